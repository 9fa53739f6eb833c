/**
 * Delivery benchmark (docs/design.md §10): N events from the durable outbox (SQLite at synchronous=FULL, or
 * PostgreSQL with --database postgres://...) to a loopback receiver, against the raw rate of a bare
 * undici client posting the same bytes with no storage, in the same run; and isolation: the rate of
 * a healthy endpoint alone vs next to a dead (hanging) one. Rounds interleave; min and median.
 * With PostgreSQL, each round also runs 1 and 3 worker processes (--workers 1,3) sharing the outbox.
 * With SQLite, also the CPU time each side costs (the whole work of a delivery is in this process).
 * Args: --n 2000 --repeats 5 --concurrency 32 --database <path|postgres://...> --workers 1,3
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Agent } from 'undici';
import pg from 'pg';
import { Dispatcher } from '../src/delivery/dispatcher.js';
import type { DispatcherOptions } from '../src/delivery/dispatcher.js';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { StoredEventInput } from '../src/domain/events.js';
import { isPostgresUrl, openStore } from '../src/store/open.js';
import type { Store } from '../src/store/ports.js';
import { emptyPlan } from '../test/helpers/outbox.js';
import { median, min, percentile, round } from './stats.js';

// The receiver runs in a worker thread, so its event loop does not share ours: `/ok` answers at
// once, `/fail` answers 500 at once, `/hang` never answers (until told to drop its sockets),
// `count` reports how many `/ok` requests arrived.
const RECEIVER = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
let ok = 0; const hanging = new Set();
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url.startsWith('/hang')) { hanging.add(res.socket); return; }
    if (req.url.startsWith('/fail')) { res.writeHead(500, { 'content-type': 'text/plain' }).end('down'); return; }
    ok++; res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
parentPort.on('message', (m) => {
  if (m === 'count') parentPort.postMessage({ ok });
  if (m === 'reset') { ok = 0; for (const s of hanging) s.destroy(); hanging.clear(); parentPort.postMessage({ reset: true }); }
});
`;

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : fallback;
}

const T0 = Date.now() - 60_000;

function body(i: number): string {
  const id = randomBytes(16).toString('hex');
  return JSON.stringify({
    id,
    access_token_reference_id: 'clinic_bench',
    object: 'event',
    created: new Date(T0).toISOString(),
    type: 'appointment.updated',
    data: {
      id: randomBytes(16).toString('hex'),
      ehr_appointment_id: `A${i}`,
      patient_mrn: String(100_000 + i),
      patient_name: `Patient ${i}`,
      datetime: '2026-11-03T15:00:00.000Z',
      duration: 30,
      location: '2',
      status: '2',
      provider_name: 'Dr. Provider',
      appointment_type: 'FOLLOW-UP',
      appointment_mode: 'office',
      updated_fields: { status: '2' },
    },
  });
}

/**
 * Commits n events in transactions of 1,000, as syncs would: one per ordering key, or `keysPer`
 * per key (event i about key i mod n/keysPer, so each key's later events come after every key's first).
 */
async function fill(store: Store, connectionId: string, n: number, prefix: string, keysPer = 1): Promise<void> {
  const keys = Math.ceil(n / keysPer);
  const base = emptyPlan(connectionId, T0, 'clinic_bench');
  for (let start = 0; start < n; start += 1000) {
    const events: StoredEventInput[] = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const b = body(i);
      events.push({ id: (JSON.parse(b) as { id: string }).id, type: 'appointment.updated', orderingKey: `${prefix}${i % keys}`, jobId: null, patientEhrId: null, createdAt: T0, body: b });
    }
    const run = await store.startSyncRun(connectionId, T0);
    await store.commitSync({ runId: run.id, connectionId, plan: { ...base, events }, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
  }
}

class Receiver {
  private constructor(
    private readonly worker: Worker,
    readonly port: number,
  ) {}
  static async start(): Promise<Receiver> {
    const worker = new Worker(RECEIVER, { eval: true });
    const port = await new Promise<number>((r) => worker.once('message', (m: { port: number }) => r(m.port)));
    return new Receiver(worker, port);
  }
  private ask<T>(msg: string): Promise<T> {
    return new Promise((r) => {
      this.worker.once('message', (m: T) => r(m));
      this.worker.postMessage(msg);
    });
  }
  async count(): Promise<number> {
    return (await this.ask<{ ok: number }>('count')).ok;
  }
  async reset(): Promise<void> {
    await this.ask('reset');
  }
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A fresh database per measurement: a SQLite file in a temp dir, or a fresh PostgreSQL schema. */
async function freshStore(database: string | null, cleanups: (() => Promise<void>)[]): Promise<{ store: Store; url: string }> {
  if (database && isPostgresUrl(database)) {
    const schema = `bench_${randomBytes(5).toString('hex')}`;
    const url = new URL(database);
    url.searchParams.set('schema', schema);
    const store = await openStore(url.toString());
    cleanups.push(async () => {
      await store.close();
      const c = new pg.Client({ connectionString: database });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    });
    return { store, url: url.toString() };
  }
  const dir = mkdtempSync(join(database ?? tmpdir(), 'ehrsync-bench-'));
  const url = join(dir, 'bench.db');
  const store = await openStore(url);
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, url };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await sleep(2);
}

/** CPU time (user + system, every thread of this process: the receiver's too) since `from`, in µs. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(from);
  return c.user + c.system;
}

/** The bare undici client: n POSTs of the same bytes, `concurrency` at a time. Returns ms and the process's CPU µs. */
async function raw(rx: Receiver, bodies: string[], concurrency: number): Promise<{ ms: number; cpuUs: number }> {
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 30_000 });
  const origin = `http://127.0.0.1:${rx.port}`;
  let next = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++] as string;
        const res = await agent.request({ origin, path: '/ok', method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
        await res.body.text();
      }
    }),
  );
  const ms = performance.now() - started;
  const cpuUs = cpuSince(cpu0);
  await agent.close();
  return { ms, cpuUs };
}

interface Setup {
  store: Store;
  url: string;
  accountId: string;
  connectionId: string;
}

async function world(database: string | null, cleanups: (() => Promise<void>)[]): Promise<Setup> {
  const { store, url } = await freshStore(database, cleanups);
  const account = await store.createAccount({ name: 'Bench', clientId: `ci_${randomBytes(4).toString('hex')}`, clientSecretHash: 'h', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', now: T0 });
  return { store, url, accountId: account.id, connectionId: connection.id };
}

/** The dispatcher's settings in every round, in this process or in a worker process: per-endpoint cap = the raw client's connections. */
export function dispatcherOptions(store: Store, concurrency: number): DispatcherOptions {
  return { store, allowPrivateAddresses: true, httpTimeoutMs: 30_000, maxPerEndpoint: concurrency, maxInFlight: 4 * concurrency, batchSize: 100, pollIntervalMs: 20 };
}

/** A fresh outbox of n events for one endpoint `/ok` of the receiver, whose count is reset. */
async function filledOutbox(rx: Receiver, database: string | null, n: number, prefix: string, cleanups: (() => Promise<void>)[]): Promise<Setup> {
  const w = await world(database, cleanups);
  await w.store.createEndpoint({ accountId: w.accountId, url: `http://127.0.0.1:${rx.port}/ok`, secret: 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==', now: T0 });
  await fill(w.store, w.connectionId, n, prefix);
  await rx.reset();
  return w;
}

/** Until the receiver has n requests and every delivery is recorded as final. */
async function allDelivered(rx: Receiver, w: Setup, n: number): Promise<void> {
  await waitFor(async () => (await rx.count()) >= n);
  await waitFor(async () => (await w.store.listEventDeliveries({ accountId: w.accountId, deliveryStatus: 'pending', order: 'asc', limit: 1, offset: 0 })).total === 0);
}

function dispatcher(store: Store, concurrency: number): Dispatcher {
  return new Dispatcher(dispatcherOptions(store, concurrency));
}

/** Ours: n events from the outbox to `/ok`; ms until every delivery is recorded as succeeded, the process's CPU µs meanwhile, and attempt latencies. */
async function ours(rx: Receiver, database: string | null, n: number, concurrency: number): Promise<{ ms: number; cpuUs: number; latencies: number[]; elu: number }> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const w = await filledOutbox(rx, database, n, 'k', cleanups);
    const d = dispatcher(w.store, concurrency);
    const started = performance.now();
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    d.start();
    await allDelivered(rx, w, n);
    const ms = performance.now() - started;
    const cpuUs = cpuSince(cpu0);
    const elu = performance.eventLoopUtilization(elu0).utilization;
    await d.stop();
    const events = await w.store.listEvents({ accountId: w.accountId, limit: 200 });
    const latencies: number[] = [];
    for (const e of events) for (const a of await w.store.listAttempts(e.id)) latencies.push(a.durationMs);
    return { ms, cpuUs, latencies, elu };
  } finally {
    for (const c of cleanups) await c();
  }
}

/** A delivery worker process (bench/workers/delivery-worker.ts), kept across rounds. */
class WorkerProcess {
  private constructor(private readonly child: ChildProcess) {}
  static async start(): Promise<WorkerProcess> {
    const child = fork(new URL('./workers/delivery-worker.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w = new WorkerProcess(child);
    await w.reply('started');
    return w;
  }
  private reply(expected: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`delivery worker exited with ${code}`));
      this.child.once('exit', onExit);
      this.child.once('message', (m) => {
        this.child.off('exit', onExit);
        if (m === expected) resolve();
        else reject(new Error(`delivery worker said ${String(m)}, expected ${expected}`));
      });
    });
  }
  async open(url: string, concurrency: number): Promise<void> {
    this.child.send({ open: url, concurrency });
    await this.reply('ready');
  }
  go(): void {
    this.child.send('go');
  }
  async stop(): Promise<void> {
    this.child.send('stop');
    await this.reply('stopped');
  }
  async exit(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send('exit');
    await exited;
  }
}

/** Like `ours`, with worker processes sharing the outbox (and the endpoint's cap) instead of this process. */
async function processes(rx: Receiver, database: string, n: number, concurrency: number, pool: WorkerProcess[]): Promise<number> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const w = await filledOutbox(rx, database, n, 'p', cleanups);
    for (const p of pool) await p.open(w.url, concurrency);
    const started = performance.now();
    for (const p of pool) p.go();
    await allDelivered(rx, w, n);
    const ms = performance.now() - started;
    for (const p of pool) await p.stop();
    return ms;
  } finally {
    for (const c of cleanups) await c();
  }
}

/**
 * Isolation: ms until a healthy endpoint has all n, alone, next to a dead endpoint that accepts and
 * never answers (`hang`), or next to one that answers 500 at once (`fail`: each of its deliveries
 * is attempted once, then waits for its retry, minutes away). With `keysPer` 4, events share keys
 * four by four: most of the failing endpoint's backlog waits behind an earlier event of its key.
 */
async function healthy(rx: Receiver, database: string | null, n: number, concurrency: number, neighbour: 'none' | 'hang' | 'fail', keysPer = 1): Promise<number> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const w = await world(database, cleanups);
    await w.store.createEndpoint({ accountId: w.accountId, url: `http://127.0.0.1:${rx.port}/ok`, secret: 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==', now: T0 });
    if (neighbour !== 'none') {
      // The dead endpoint receives every event too: a backlog as large as the healthy one's, all stuck.
      await w.store.createEndpoint({ accountId: w.accountId, url: `http://127.0.0.1:${rx.port}/${neighbour}`, secret: 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA==', now: T0 });
    }
    await fill(w.store, w.connectionId, n, 'h', keysPer);
    await rx.reset();
    const d = dispatcher(w.store, concurrency);
    const started = performance.now();
    d.start();
    await waitFor(async () => (await rx.count()) >= n);
    const ms = performance.now() - started;
    await rx.reset(); // drops the hanging requests so stop() does not wait for their timeout
    await d.stop();
    return ms;
  } finally {
    for (const c of cleanups) await c();
  }
}

export default async function run(args: string[]): Promise<Record<string, unknown>> {
  const n = Number(arg(args, 'n', '2000'));
  const repeats = Number(arg(args, 'repeats', '5'));
  const concurrency = Number(arg(args, 'concurrency', '32'));
  const database = arg(args, 'database', '') || null;
  const rx = await Receiver.start();
  const bodies = Array.from({ length: n }, (_, i) => body(i));
  const rawMs: number[] = [];
  const oursMs: number[] = [];
  const rawCpuUs: number[] = [];
  const oursCpuUs: number[] = [];
  const soloMs: number[] = [];
  const mixedMs: number[] = [];
  const failingMs: number[] = [];
  const soloSharedMs: number[] = [];
  const failingSharedMs: number[] = [];
  const latencies: number[] = [];
  const elus: number[] = [];
  // PostgreSQL is the multi-node mode: also 1 and 3 worker processes sharing the outbox.
  const workers = database && isPostgresUrl(database) ? arg(args, 'workers', '1,3').split(',').map(Number).filter((k) => k > 0) : [];
  const procMs = new Map<number, number[]>(workers.map((k) => [k, []]));
  const pool: WorkerProcess[] = [];
  for (let i = 0; i < Math.max(0, ...workers); i++) pool.push(await WorkerProcess.start());
  try {
    // Warm-up, unmeasured. A raw round on a cold JIT (client and receiver) runs 2–4× slower than a
    // warm one, which used to inflate the ratio of medians: raw rounds repeat until one is no
    // faster than the best so far (at most 10). Our side gets one smaller round of each kind that
    // measures throughput (its code shares most paths with the isolation rounds).
    for (let i = 0, best = Infinity; i < 10; i++) {
      const { ms } = await raw(rx, bodies, concurrency);
      if (ms > best * 0.95) break;
      best = Math.min(best, ms);
    }
    await ours(rx, database, Math.min(n, 1000), concurrency);
    for (const k of workers) await processes(rx, database as string, Math.min(n, 1000), concurrency, pool.slice(0, k));
    for (let r = 0; r < repeats; r++) {
      await rx.reset();
      const rawRound = await raw(rx, bodies, concurrency);
      rawMs.push(rawRound.ms);
      rawCpuUs.push(rawRound.cpuUs);
      const o = await ours(rx, database, n, concurrency);
      oursMs.push(o.ms);
      oursCpuUs.push(o.cpuUs);
      elus.push(o.elu);
      latencies.push(...o.latencies);
      soloMs.push(await healthy(rx, database, n, concurrency, 'none'));
      mixedMs.push(await healthy(rx, database, n, concurrency, 'hang'));
      failingMs.push(await healthy(rx, database, n, concurrency, 'fail'));
      soloSharedMs.push(await healthy(rx, database, n, concurrency, 'none', 4));
      failingSharedMs.push(await healthy(rx, database, n, concurrency, 'fail', 4));
      for (const k of workers) procMs.get(k)!.push(await processes(rx, database as string, n, concurrency, pool.slice(0, k)));
      const procs = workers.map((k) => `, ${k} worker process${k === 1 ? '' : 'es'} ${round(procMs.get(k)!.at(-1)!)} ms`).join('');
      console.log(`round ${r + 1}: raw ${round(rawMs.at(-1)!)} ms, ours ${round(oursMs.at(-1)!)} ms, healthy alone ${round(soloMs.at(-1)!)} ms, healthy next to a dead endpoint ${round(mixedMs.at(-1)!)} ms, next to a failing one ${round(failingMs.at(-1)!)} ms; keys shared four by four: alone ${round(soloSharedMs.at(-1)!)} ms, next to a failing one ${round(failingSharedMs.at(-1)!)} ms${procs}`);
    }
  } finally {
    await rx.close();
    for (const p of pool) await p.exit();
  }
  const rate = (ms: number) => round((n / ms) * 1000, 1);
  const perS = rate(median(oursMs));
  const rawPerS = rate(median(rawMs));
  const sqlite = !(database && isPostgresUrl(database));
  const result = {
    bench: 'delivery',
    store: sqlite ? 'sqlite' : 'postgres',
    n,
    repeats,
    concurrency,
    per_s: perS,
    per_s_best: rate(min(oursMs)),
    raw_per_s: rawPerS,
    raw_per_s_best: rate(min(rawMs)),
    ratio: round(perS / rawPerS, 3),
    ratio_best: round(min(rawMs) / min(oursMs), 3),
    // Share of the in-process round our event loop was busy (1 = CPU-bound in this process).
    event_loop_utilization: round(median(elus)),
    // SQLite only (PostgreSQL's work is in its server's processes, not counted here): CPU time of
    // this whole process (every thread, the receiver's and the kernel's share included) per
    // delivery and per raw request, their ratio, and the cores each side kept busy on average.
    // ratio = cpu_ratio × cores / raw_cores: how much work, and how much of it ran at once.
    ...(sqlite
      ? {
          cpu_us_per_delivery: round(median(oursCpuUs) / n, 1),
          raw_cpu_us_per_request: round(median(rawCpuUs) / n, 1),
          cpu_ratio: round(median(rawCpuUs) / median(oursCpuUs), 3),
          cores: round(median(oursCpuUs.map((us, i) => us / 1000 / (oursMs[i] as number)))),
          raw_cores: round(median(rawCpuUs.map((us, i) => us / 1000 / (rawMs[i] as number)))),
        }
      : {}),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    healthy_solo_per_s: rate(median(soloMs)),
    healthy_with_dead_per_s: rate(median(mixedMs)),
    isolation_ratio: round(median(soloMs) / median(mixedMs), 3),
    isolation_ratio_best: round(min(soloMs) / min(mixedMs), 3),
    // Each round measures raw and ours back to back; their ratio per round is less exposed to the
    // host's pauses than a ratio of medians taken over different moments.
    ratio_rounds: rawMs.map((r, i) => round(r / (oursMs[i] as number), 3)),
    isolation_rounds: soloMs.map((r, i) => round(r / (mixedMs[i] as number), 3)),
    // Next to an endpoint answering 500 to each of its n deliveries once (then they wait for their
    // retries): both get the same share of attempts while it fails, so ~0.5 is the fair ceiling.
    healthy_with_failing_per_s: rate(median(failingMs)),
    isolation_failing_ratio: round(median(soloMs) / median(failingMs), 3),
    // The same with events sharing keys four by four: most of the failing endpoint's backlog is
    // blocked behind an earlier event of its key, and every lease that scans it checks each one.
    isolation_failing_shared_keys_ratio: round(median(soloSharedMs) / median(failingSharedMs), 3),
    // Worker processes (PostgreSQL): deliveries/s and the ratio to the raw rate, per process count.
    ...Object.fromEntries(
      workers.flatMap((k) => {
        const ms = procMs.get(k)!;
        return [
          [`per_s_${k}proc`, rate(median(ms))],
          [`ratio_${k}proc`, round(rate(median(ms)) / rawPerS, 3)],
          [`ratio_${k}proc_rounds`, rawMs.map((r, i) => round(r / (ms[i] as number), 3))],
        ];
      }),
    ),
    target: sqlite ? { ratio: 0.5, isolation_ratio: 0.8 } : { ratio: 0.35, ratio_3proc: '> ratio_1proc', isolation_ratio: 0.8 },
  };
  const { ratio: target, isolation_ratio: isolationTarget } = result.target;
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  console.log(`${result.store}, n=${n} events, concurrency ${concurrency}, ${repeats} rounds`);
  console.log(`medians:        ours ${perS}/s vs raw ${rawPerS}/s (ratio ${result.ratio})`);
  if (sqlite) {
    console.log(`CPU (medians):  ours ${result.cpu_us_per_delivery} us per delivery on ${result.cores} cores vs raw ${result.raw_cpu_us_per_request} us per request on ${result.raw_cores} cores (cpu_ratio ${result.cpu_ratio}; whole process, receiver included)`);
  }
  console.log(`fastest rounds: ours ${result.per_s_best}/s vs raw ${result.raw_per_s_best}/s (ratio_best ${result.ratio_best}: the figure least exposed to the host's pauses)`);
  console.log(`healthy endpoint keeps ${result.isolation_ratio} of its solo rate next to a dead one, ${result.isolation_failing_ratio} next to a failing one, ${result.isolation_failing_shared_keys_ratio} next to a failing one with keys shared four by four (fair share: 0.5)`);
  console.log(`targets: ratio >= ${target} ${verdict(result.ratio >= target)} (ratio_best ${verdict(result.ratio_best >= target)}); isolation_ratio >= ${isolationTarget} ${verdict(result.isolation_ratio >= isolationTarget)}`);
  return result;
}
