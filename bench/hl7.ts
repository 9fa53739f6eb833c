/**
 * HL7 v2 benchmark: SIU messages over MLLP through ehrsync (the runtime's listener, the push
 * ingest's group commit into a SQLite file at synchronous=FULL, the dispatcher) to a loopback
 * webhook receiver. The clinics' senders and the receiver run in a separate process
 * (bench/workers/hl7-world.ts), so ehrsync's event loop does only ehrsync's work. Figures: one
 * sender waiting for each ACK (messages/s), 20 senders on 20 hl7v2 connections at once (messages/s),
 * and send → webhook latency with the 20 senders paced open-loop at half the fastest 20-sender rate
 * measured. Baseline in the same rounds: the same senders against a bare MllpServer whose handler
 * returns a canned ACK (listener and framing alone). Each round is a fresh ehrsync (temp dir);
 * round 0 is an unmeasured warm-up; rounds interleave ours and the echo; min/best and median.
 * Args: --repeats 3 --one 800 --senders 20 --per-sender 80 --latency-ms 4000; diagnostics: --stages
 * (store calls timed per phase), --no-delivery (the ingest alone, no dispatcher), --preload N (N
 * patients and appointments per connection in the projection before the messages)
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { createConnection } from '../src/app/services.js';
import { resolveConfig } from '../src/cli/config.js';
import { startRuntime } from '../src/cli/runtime.js';
import type { Runtime } from '../src/cli/runtime.js';
import { MllpServer } from '../src/connectors/hl7v2/mllp-server.js';
import { silentLogger } from '../src/domain/logger.js';
import { newSigningSecret } from '../src/domain/secrets.js';
import type { Store } from '../src/store/ports.js';
import { gc, median, min, percentile, round } from './stats.js';
import type { ClosedResult, PacedResult, SendersSpec } from './workers/hl7-world.js';

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : fallback;
}

/** The canned answer of the bare MLLP echo: no parsing, no store. */
const CANNED_ACK = Buffer.from('MSH|^~\\&|EHRSYNC|F1|BENCH|F1|20260110000000||ACK^S12|ACK00001|P|2.3\rMSA|AA|ECHO\r', 'latin1');

/** The world process: senders and receiver, driven over IPC. */
class World {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(
    private readonly child: ChildProcess,
    /** The webhook receiver's port. */
    readonly receiverPort: number,
  ) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`hl7 world: ${m.error}`));
      else p.resolve(m.result);
    });
    child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`hl7 world exited with ${code}`));
      this.pending.clear();
    });
  }

  static async start(): Promise<World> {
    const child = fork(new URL('./workers/hl7-world.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`hl7 world exited with ${code}`)));
      child.once('message', (m: { ready?: number }) => (m.ready ? resolve(m.ready) : reject(new Error('hl7 world: unexpected first message'))));
    });
    return new World(child, port);
  }

  private call<T>(cmd: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, ...cmd });
    });
  }

  closed(spec: SendersSpec): Promise<ClosedResult> {
    return this.call({ cmd: 'closed', ...spec });
  }
  paced(spec: Omit<SendersSpec, 'perSender'> & { rate: number; durationMs: number; waitMs: number }): Promise<PacedResult> {
    return this.call({ cmd: 'paced', ...spec });
  }
  count(): Promise<number> {
    return this.call({ cmd: 'count' });
  }
  reset(): Promise<void> {
    return this.call({ cmd: 'reset' });
  }
  async exit(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.call({ cmd: 'exit' }).catch(() => {});
    await exited;
  }
}

/**
 * Per-stage timings of the store calls the feed, the ingest and the dispatcher make (--stages).
 * Calls of one stage overlap (a batch loads one slice per connection at once, each waiting for the
 * others, since better-sqlite3 runs them one after another), so a stage's time is the wall time
 * during which at least one of its calls was in flight, not the sum of the calls. A call's time
 * includes waiting for the single SQLite connection (another transaction holding it).
 */
class Stages {
  private readonly stats = new Map<string, { calls: number; inFlight: number; since: number; busyMs: number }>();
  private readonly batchSizes: number[] = [];

  /** Wraps the store's methods in place: the feed, the ingest and the dispatcher hold this same object. */
  instrument(store: Store): void {
    const names = ['findFeedMessage', 'loadPushSlice', 'commitPushes', 'leaseDeliveries', 'recordDeliveryOutcomes'] as const;
    for (const name of names) {
      const original = (store[name] as (...a: unknown[]) => Promise<unknown>).bind(store);
      (store as unknown as Record<string, unknown>)[name] = async (...a: unknown[]) => {
        if (name === 'commitPushes') this.batchSizes.push((a[0] as unknown[]).length);
        const s = this.stats.get(name) ?? { calls: 0, inFlight: 0, since: 0, busyMs: 0 };
        this.stats.set(name, s);
        s.calls++;
        if (s.inFlight++ === 0) s.since = performance.now();
        try {
          return await original(...a);
        } finally {
          if (--s.inFlight === 0) s.busyMs += performance.now() - s.since;
        }
      };
    }
  }

  /** One line per stage: calls, wall time in flight (share of the phase, µs per message), calls per message; then the commit batch sizes. */
  report(messages: number, phaseMs: number): string[] {
    const lines = [...this.stats].map(
      ([name, s]) =>
        `    ${name.padEnd(22)} ${String(s.calls).padStart(6)} calls (${round(s.calls / messages, 2)} per message), in flight ${String(round(s.busyMs, 0)).padStart(5)} ms: ${String(round((100 * s.busyMs) / phaseMs, 0)).padStart(2)}% of the phase, ${round((s.busyMs * 1000) / messages, 0)} µs per message`,
    );
    if (this.batchSizes.length > 0) lines.push(`    messages per commitPushes: mean ${round(this.batchSizes.reduce((x, y) => x + y, 0) / this.batchSizes.length, 1)}, median ${median(this.batchSizes)}, max ${Math.max(...this.batchSizes)}`);
    return lines;
  }

  clear(): void {
    this.stats.clear();
    this.batchSizes.length = 0;
  }
}

/** A fresh ehrsync: SQLite in a temp dir, the delivery role (else the api role, idle) and the HL7 listener, one hl7v2 connection per sender and one endpoint. */
async function startEhrsync(receiverPort: number, apps: string[], delivery: boolean, preload: number): Promise<{ runtime: Runtime; host: string; port: number; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ehrsync-hl7-bench-'));
  let runtime: Runtime | null = null;
  try {
    const config = resolveConfig({ database: join(dir, 'ehrsync.db'), hl7Port: 0, port: 0, roles: delivery ? ['delivery'] : ['api'], allowInsecureEndpoints: true, logLevel: 'silent', retentionDays: 0 });
    runtime = await startRuntime({
      config,
      logger: silentLogger,
      createConnector: () => {
        throw new Error('the hl7 bench polls no EHR');
      },
    });
    const { store, secretBox } = runtime;
    const now = Date.now();
    const account = await store.createAccount({ name: 'Bench', clientId: `ci_hl7_${now}`, clientSecretHash: 'h', now });
    await store.createEndpoint({ accountId: account.id, url: `http://127.0.0.1:${receiverPort}/hook`, secret: secretBox.encrypt(newSigningSecret()), now });
    const connectionIds: string[] = [];
    for (const [i, app] of apps.entries()) {
      const { connection } = await createConnection(store, secretBox, { accountId: account.id, connector: 'hl7v2', config: { sendingApplication: app, sendingFacility: 'F1' }, timezone: 'America/Chicago', referenceId: `clinic_${i + 1}` }, now);
      connectionIds.push(connection.id);
    }
    if (preload > 0) preloadClinics(join(dir, 'ehrsync.db'), connectionIds, preload, now);
    const address = runtime.hl7Address!;
    const rt = runtime;
    return {
      runtime: rt,
      host: address.host,
      port: address.port,
      async close() {
        await rt.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await runtime?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * --preload N: N patients and N appointments already projected per connection, each with its
 * message times, as a clinic's feed leaves them after a while (written straight into the tables
 * through a second SQLite connection: this is setup, not what is measured). None of them is
 * touched by the measured messages; they only make the tables as large as a live clinic's.
 */
function preloadClinics(file: string, connectionIds: string[], n: number, now: number): void {
  const db = new Database(file);
  try {
    db.pragma('synchronous = NORMAL');
    const patient = db.prepare("INSERT INTO projection_patients (connection_id, ehr_id, id, mrn, record, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'ehr_sync', ?, ?)");
    const appointment = db.prepare("INSERT INTO projection_appointments (connection_id, ehr_id, id, patient_ehr_id, start_ms, record, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'ehr_sync', ?, ?)");
    const time = db.prepare('INSERT INTO hl7_record_times (connection_id, kind, ehr_id, message_time_ms) VALUES (?, ?, ?, ?)');
    for (const [c, connectionId] of connectionIds.entries()) {
      db.transaction(() => {
        for (let i = 0; i < n; i++) {
          const p = `PRE${i}`;
          const record = { ehr_patient_id: p, mrn: `MPRE${i}`, first_name: 'Pat', last_name: `Preload${i}`, dob: '1970-01-01', sex: 'F', phone: '(217)555-0100', cell_phone: null, email: null, address_street: '1 Main St', address_line2: null, address_city: 'Springfield', address_state: 'IL', address_zip: '62701' };
          patient.run(connectionId, p, `pre-${c}-p${i}`, `MPRE${i}`, JSON.stringify(record), now, now);
          const start = Date.UTC(2026, 0, 15, 15) + i * 60_000;
          appointment.run(connectionId, `APRE${i}`, `pre-${c}-a${i}`, p, start, JSON.stringify({ ehr_appointment_id: `APRE${i}`, patient_ehr_id: p, patient_mrn: `MPRE${i}`, datetime: new Date(start).toISOString(), duration: 30, status: 'Booked' }), now, now);
          time.run(connectionId, 'patient', p, now);
          time.run(connectionId, 'appointment', `APRE${i}`, now);
        }
      })();
    }
  } finally {
    db.close();
  }
}

/** Until the receiver has counted `n` POSTs since its last reset (one event per message: more is an error); ms waited. */
async function drained(world: World, n: number, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    const got = await world.count();
    if (got > n) throw new Error(`${got} webhooks for ${n} messages: each message should produce one event`);
    if (got === n) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`only ${got} of ${n} webhooks arrived within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Microseconds of this process's CPU (every thread) since `from`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return u.user + u.system;
}

interface ClosedPhase {
  /** Messages acknowledged per second. */
  perS: number;
  /** Messages per second until the last one's webhook arrived (ACKs and then the delivery backlog); = perS without delivery. */
  endToEndPerS: number;
  ackP50: number;
  ackP99: number;
  /** ms from the last ACK until the receiver had every webhook (ehrsync with delivery only). */
  drainMs: number;
  /** This process's CPU per message, µs: ingest and delivery for ehrsync (until drained), the listener alone for the echo. */
  cpuUs: number;
  elu: number;
  /** --stages: where the phase's time went. */
  stages: string[];
}

/** One closed-loop phase against `target`: every ACK must be AA; with `webhooks`, every message's webhook must arrive. */
async function closedPhase(world: World, target: { host: string; port: number }, apps: string[], perSender: number, tag: string, webhooks: boolean, stages: Stages | null): Promise<ClosedPhase> {
  await world.reset();
  gc();
  stages?.clear();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const r = await world.closed({ host: target.host, port: target.port, apps, perSender, tag });
  if (r.notAA > 0) throw new Error(`${r.notAA} of ${r.sent} messages were not acknowledged AA (${tag})`);
  const drainMs = webhooks ? await drained(world, r.sent) : 0;
  const cpuUs = cpuSince(cpu0) / r.sent;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  return { perS: (r.sent / r.ms) * 1000, endToEndPerS: (r.sent / (r.ms + drainMs)) * 1000, ackP50: r.ackP50, ackP99: r.ackP99, drainMs, cpuUs, elu, stages: stages?.report(r.sent, performance.now() - t0) ?? [] };
}

/** The best (max or min) and median of a figure over the rounds. */
function summary(xs: number[], best: 'max' | 'min'): { best: number; median: number; rounds: number[] } {
  return { best: round(best === 'max' ? Math.max(...xs) : min(xs), 1), median: round(median(xs), 1), rounds: xs.map((x) => round(x, 1)) };
}

export default async function run(args: string[]): Promise<Record<string, unknown>> {
  const repeats = Number(arg(args, 'repeats', '3'));
  const oneN = Number(arg(args, 'one', '800'));
  const senders = Number(arg(args, 'senders', '20'));
  const perSender = Number(arg(args, 'per-sender', '80'));
  const latencyMs = Number(arg(args, 'latency-ms', '4000'));
  // Diagnostics: --stages times the store calls per phase; --no-delivery runs ehrsync without the
  // dispatcher (the ingest alone: no webhooks, no latency phase); --preload N fills each connection
  // with N patients and appointments first.
  const stages = args.includes('--stages') ? new Stages() : null;
  const delivery = !args.includes('--no-delivery');
  const preload = Number(arg(args, 'preload', '0'));
  const apps = Array.from({ length: senders }, (_, i) => `BENCH${i + 1}`);
  const world = await World.start();
  const echo = new MllpServer({ onMessage: async () => CANNED_ACK });
  const echoAddress = await echo.listen();

  const figures = { echo1: [] as ClosedPhase[], ours1: [] as ClosedPhase[], echoN: [] as ClosedPhase[], oursN: [] as ClosedPhase[] };
  const latencies: number[] = [];
  const latencyRounds: { rate: number; p50: number; p99: number; max: number; ackP99: number; maxLagMs: number; loopBlockedMs: number; cpuUs: number }[] = [];
  let bestRate = 0;
  const started = performance.now();
  try {
    // Round 0 is the warm-up: every phase, the same sizes, unmeasured (JIT, sockets, SQLite's cache).
    for (let r = 0; r <= repeats; r++) {
      const warm = r === 0;
      const e1 = await closedPhase(world, echoAddress, apps.slice(0, 1), oneN, `E1R${r}`, false, null);
      const ours = await startEhrsync(world.receiverPort, apps, delivery, preload);
      try {
        const st = warm ? null : stages;
        st?.instrument(ours.runtime.store);
        const o1 = await closedPhase(world, ours, apps.slice(0, 1), oneN, `O1R${r}`, delivery, st);
        const eN = await closedPhase(world, echoAddress, apps, perSender, `ENR${r}`, false, null);
        const oN = await closedPhase(world, ours, apps, perSender, `ONR${r}`, delivery, st);
        bestRate = Math.max(bestRate, oN.perS);
        let line = `e1 ${round(e1.perS, 0)}/s, ours1 ${round(o1.perS, 0)}/s (ACK p50 ${round(o1.ackP50)} ms); e${senders} ${round(eN.perS, 0)}/s, ours${senders} ${round(oN.perS, 0)}/s (ACK p50 ${round(oN.ackP50)} ms)`;
        let p: PacedResult | null = null;
        let latencyStages: string[] = [];
        let cpuUs = 0;
        let loopBlockedMs = 0;
        // Latency: all senders paced open-loop at half the fastest 20-sender rate measured so far.
        const rate = bestRate / 2;
        if (delivery) {
          await world.reset();
          gc();
          st?.clear();
          const t0 = performance.now();
          const cpu0 = process.cpuUsage();
          const loopDelay = monitorEventLoopDelay({ resolution: 5 });
          loopDelay.enable();
          p = await world.paced({ host: ours.host, port: ours.port, apps, tag: `LR${r}`, rate, durationMs: latencyMs, waitMs: 30_000 });
          loopDelay.disable();
          loopBlockedMs = loopDelay.max / 1e6;
          cpuUs = cpuSince(cpu0) / p.sent;
          latencyStages = st?.report(p.sent, performance.now() - t0) ?? [];
          if (p.notAA > 0 || p.missing > 0) throw new Error(`latency round: ${p.notAA} not AA, ${p.missing} webhooks missing of ${p.sent}`);
          line += `; latency at ${round(rate, 0)}/s: p50 ${round(percentile(p.latencies, 50), 1)} ms, p99 ${round(percentile(p.latencies, 99), 1)} ms, max ${round(Math.max(...p.latencies), 1)} ms (ehrsync's event loop blocked up to ${round(loopBlockedMs, 0)} ms, senders up to ${round(p.maxLagMs, 0)} ms late)`;
        }
        if (warm) {
          console.log(`warm-up: ${line}`);
          continue;
        }
        console.log(`round ${r}: ${line}`);
        if (stages) {
          for (const [name, lines] of [['one sender', o1.stages], [`${senders} senders`, oN.stages], ['latency', latencyStages]] as const) {
            if (lines.length > 0) console.log(`  stages, ${name}:\n${lines.join('\n')}`);
          }
        }
        figures.echo1.push(e1);
        figures.ours1.push(o1);
        figures.echoN.push(eN);
        figures.oursN.push(oN);
        if (p) {
          latencies.push(...p.latencies);
          latencyRounds.push({ rate, p50: percentile(p.latencies, 50), p99: percentile(p.latencies, 99), max: Math.max(...p.latencies), ackP99: p.ackP99, maxLagMs: p.maxLagMs, loopBlockedMs, cpuUs });
        }
      } finally {
        await ours.close();
      }
    }
  } finally {
    await echo.close();
    await world.exit();
  }

  const per = (xs: ClosedPhase[]) => summary(xs.map((x) => x.perS), 'max');
  const ms = (xs: ClosedPhase[], f: (x: ClosedPhase) => number) => round(median(xs.map(f)), 2);
  const ratio = (ours: ClosedPhase[], base: ClosedPhase[]) => ours.map((o, i) => round(o.perS / (base[i] as ClosedPhase).perS, 3));
  const latency =
    latencyRounds.length === 0
      ? null
      : {
          rate_per_s: round(median(latencyRounds.map((l) => l.rate)), 0),
          p50_ms: summary(latencyRounds.map((l) => l.p50), 'min'),
          p99_ms: summary(latencyRounds.map((l) => l.p99), 'min'),
          p99_all_rounds_ms: round(percentile(latencies, 99), 1),
          max_ms: round(Math.max(...latencyRounds.map((l) => l.max)), 1),
          ack_p99_ms: round(median(latencyRounds.map((l) => l.ackP99)), 1),
          sender_max_lag_ms: round(Math.max(...latencyRounds.map((l) => l.maxLagMs)), 1),
          // The longest stretch ehrsync's event loop could not run a timer (a commit's fsync, GC, a host pause).
          event_loop_blocked_max_ms: round(Math.max(...latencyRounds.map((l) => l.loopBlockedMs)), 1),
          cpu_us_per_message: round(median(latencyRounds.map((l) => l.cpuUs)), 1),
        };
  const result = {
    bench: 'hl7',
    delivery,
    preload,
    repeats,
    one_sender_messages: oneN,
    senders,
    per_sender: perSender,
    one_per_s: per(figures.ours1),
    one_echo_per_s: per(figures.echo1),
    one_ratio_rounds: ratio(figures.ours1, figures.echo1),
    one_ack_p50_ms: ms(figures.ours1, (x) => x.ackP50),
    one_ack_p99_ms: ms(figures.ours1, (x) => x.ackP99),
    one_cpu_us_per_message: ms(figures.ours1, (x) => x.cpuUs),
    one_echo_cpu_us_per_message: ms(figures.echo1, (x) => x.cpuUs),
    many_per_s: per(figures.oursN),
    many_echo_per_s: per(figures.echoN),
    many_ratio_rounds: ratio(figures.oursN, figures.echoN),
    many_end_to_end_per_s: summary(figures.oursN.map((x) => x.endToEndPerS), 'max'),
    many_ack_p50_ms: ms(figures.oursN, (x) => x.ackP50),
    many_ack_p99_ms: ms(figures.oursN, (x) => x.ackP99),
    many_cpu_us_per_message: ms(figures.oursN, (x) => x.cpuUs),
    many_echo_cpu_us_per_message: ms(figures.echoN, (x) => x.cpuUs),
    many_event_loop_utilization: ms(figures.oursN, (x) => x.elu),
    many_drain_ms: ms(figures.oursN, (x) => x.drainMs),
    latency,
    seconds: round((performance.now() - started) / 1000, 1),
    target: { one_per_s: 300, many_per_s: 2000, latency_p99_ms: 100 },
  };
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  console.log(`SQLite (synchronous=FULL)${delivery ? '' : ', no dispatcher (--no-delivery)'}${preload > 0 ? `, ${preload} patients and appointments per connection beforehand` : ''}, ${repeats} rounds after a warm-up, ${round(result.seconds, 0)} s`);
  console.log(`one sender, ${oneN} messages: ours ${result.one_per_s.median}/s (best ${result.one_per_s.best}) vs bare MLLP echo ${result.one_echo_per_s.median}/s (best ${result.one_echo_per_s.best}); ours/echo per round ${result.one_ratio_rounds.join(', ')}; ACK p50 ${result.one_ack_p50_ms} ms, p99 ${result.one_ack_p99_ms} ms`);
  console.log(`${senders} senders × ${perSender} messages: ours ${result.many_per_s.median}/s (best ${result.many_per_s.best}) vs bare MLLP echo ${result.many_echo_per_s.median}/s (best ${result.many_echo_per_s.best}); ours/echo per round ${result.many_ratio_rounds.join(', ')}; ACK p50 ${result.many_ack_p50_ms} ms, p99 ${result.many_ack_p99_ms} ms${delivery ? `; the last webhook ${result.many_drain_ms} ms after the last ACK (end to end ${result.many_end_to_end_per_s.median}/s, best ${result.many_end_to_end_per_s.best})` : ''}`);
  console.log(`CPU of ehrsync's process per message (${delivery ? 'ingest + delivery' : 'ingest'}, medians): one sender ${result.one_cpu_us_per_message} µs, ${senders} senders ${result.many_cpu_us_per_message} µs (event loop ${result.many_event_loop_utilization} busy); bare echo ${result.one_echo_cpu_us_per_message} / ${result.many_echo_cpu_us_per_message} µs`);
  if (latency) {
    console.log(`send → webhook, ${senders} senders open-loop at ${latency.rate_per_s}/s in all: p50 min ${latency.p50_ms.best} / median ${latency.p50_ms.median} ms; p99 min ${latency.p99_ms.best} / median ${latency.p99_ms.median} ms (rounds pooled ${latency.p99_all_rounds_ms} ms, max ${latency.max_ms} ms; ACK p99 ${latency.ack_p99_ms} ms; ehrsync's event loop blocked up to ${latency.event_loop_blocked_max_ms} ms, senders at most ${latency.sender_max_lag_ms} ms behind schedule)`);
  }
  const oneOk = result.one_per_s.median >= 300;
  const manyOk = result.many_per_s.median >= 2000;
  console.log(
    `targets (medians; best round in brackets): one sender >= 300/s ${verdict(oneOk)} (${verdict(result.one_per_s.best >= 300)}); ${senders} senders >= 2000/s ${verdict(manyOk)} (${verdict(result.many_per_s.best >= 2000)})` +
      (latency ? `; send → webhook p99 <= 100 ms ${verdict(latency.p99_ms.median <= 100)} (${verdict(latency.p99_ms.best <= 100)})` : ''),
  );
  return result;
}
