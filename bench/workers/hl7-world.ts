/**
 * The outside world of the hl7 benchmark, in its own process (forked by bench/hl7.ts) so that its
 * work does not share ehrsync's event loop: the clinics' MLLP senders and the loopback webhook
 * receiver. Senders and receiver share this process's clock, so send → receipt latencies need no
 * clock sync. Commands arrive over IPC as `{ id, cmd, ... }` and are answered `{ id, result }` or
 * `{ id, error }`; `ready` with the receiver's port is sent once at start.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { openMllpConnection } from '../../src/connectors/hl7v2/mllp-client.js';
import type { MllpClientConnection } from '../../src/connectors/hl7v2/mllp-client.js';
import { percentile } from '../stats.js';

/** A phase's senders: who sends (one MSH-3 per sender), where, and how many messages each. */
export interface SendersSpec {
  host: string;
  port: number;
  /** MSH-3 of each sender (one connection each); MSH-4 is `F1`. */
  apps: string[];
  /** Messages per sender: S12 then S14 per appointment, alternating. */
  perSender: number;
  /** Makes this phase's appointment ids and MSH-10s unique in the run. */
  tag: string;
}

/** Closed loop: each sender waits for an ACK before sending its next message. */
export interface ClosedResult {
  ms: number;
  sent: number;
  notAA: number;
  /** ACK round trips as each sender saw them, ms. */
  ackP50: number;
  ackP99: number;
}

/** Open loop at a fixed total rate, then every message's event waited for at the receiver. */
export interface PacedResult {
  ms: number;
  sent: number;
  notAA: number;
  ackP50: number;
  ackP99: number;
  /** Send → webhook receipt, ms, one per message whose event arrived. */
  latencies: number[];
  /** Messages whose event did not arrive within the wait. */
  missing: number;
  /** Largest lag of a write behind its schedule, ms (this process running late). */
  maxLagMs: number;
}

type Command =
  | ({ id: number; cmd: 'closed' } & SendersSpec)
  | ({ id: number; cmd: 'paced'; rate: number; durationMs: number; waitMs: number } & Omit<SendersSpec, 'perSender'>)
  | { id: number; cmd: 'count' }
  | { id: number; cmd: 'reset' }
  | { id: number; cmd: 'exit' };

const BASE_TIME = Date.UTC(2026, 0, 10, 0, 0, 0);

function hl7Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * Message `k` of a sender: appointment `k >> 1`, an S12 (a new booking of a new patient) when k is
 * even, else the S14 that changes its duration from 30 to 45 minutes. MSH-7 rises by a minute per
 * message (ehrsync orders messages to the minute), so each S14 is newer than its S12. `key` is what the receiver sees of the message's event:
 * the patient's MRN in `appointment.created`, the appointment id in `appointment.updated`.
 */
function message(app: string, tag: string, k: number): { payload: Buffer; key: string } {
  const appt = `${tag}${app}N${k >> 1}`;
  const mrn = `M${appt}`;
  const s14 = (k & 1) === 1;
  const minutes = s14 ? 45 : 30;
  const end = s14 ? '20260115101500' : '20260115100000';
  const segments = [
    `MSH|^~\\&|${app}|F1|EHRSYNC|F1|${hl7Time(BASE_TIME + k * 60_000)}||SIU^${s14 ? 'S14' : 'S12'}|${tag}${app}C${k}|P|2.3`,
    `SCH|P${appt}^BENCH|${appt}^BENCH||||${s14 ? 'MODIFY^Modified' : 'NEW^New appointment'}|^FOLLOW UP|OFFICE^Office visit|${minutes}|MIN|^^^20260115093000^${end}|||||589^Lee^Steven||||589^Lee^Steven|||||Booked`,
    `PID|1||P${appt}^^^EPI^PI~${mrn}^^^F1^MR||Doe^Jane^Q^^^^L||19800203|F|||12 Main St^Apt 4^Springfield^IL^62701^USA^H||(217)555-0101^PRN^PH`,
    'PV1|1|O|FAMMED^^^F1',
    `RGS|1|${s14 ? 'U' : 'A'}`,
    `AIS|1|${s14 ? 'U' : 'A'}|70001^FOLLOW UP^EPIC|20260115093000|0|MIN|${minutes}|MIN`,
    `AIL|1|${s14 ? 'U' : 'A'}|FAMMED^^^F1^^^^^Family Medicine`,
    `AIP|1|${s14 ? 'U' : 'A'}|E200^Best^Tina^^^Dr.^^^EPIC|PHYS^Physician`,
  ];
  return { payload: Buffer.from(`${segments.join('\r')}\r`, 'latin1'), key: s14 ? `u:${appt}` : `c:${mrn}` };
}

// The receiver: counts every POST and stamps the first receipt of each message's event.
let received = 0;
const arrivals = new Map<string, number>();
const receiver = createServer((req, res) => {
  const at = performance.now();
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received++;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type?: string; data?: { mrn?: string; ehr_appointment_id?: string } };
      const key = body.type === 'appointment.created' ? `c:${body.data?.mrn}` : body.type === 'appointment.updated' ? `u:${body.data?.ehr_appointment_id}` : null;
      if (key !== null && !arrivals.has(key)) arrivals.set(key, at);
    } catch {
      // counted all the same
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
});
receiver.keepAliveTimeout = 60_000;

async function connectAll(spec: Pick<SendersSpec, 'host' | 'port' | 'apps'>): Promise<MllpClientConnection[]> {
  return Promise.all(spec.apps.map(() => openMllpConnection(spec.host, spec.port, { timeoutMs: 30_000 })));
}

const isAA = (ack: Buffer): boolean => ack.includes('MSA|AA|');

async function closed(spec: SendersSpec): Promise<ClosedResult> {
  const messages = spec.apps.map((app) => Array.from({ length: spec.perSender }, (_, k) => message(app, spec.tag, k).payload));
  const conns = await connectAll(spec);
  const rtts: number[] = [];
  let notAA = 0;
  const started = performance.now();
  try {
    await Promise.all(
      conns.map(async (conn, i) => {
        for (const payload of messages[i]!) {
          const t = performance.now();
          const ack = await conn.send(payload);
          rtts.push(performance.now() - t);
          if (!isAA(ack)) notAA++;
        }
      }),
    );
  } finally {
    for (const c of conns) c.close();
  }
  const ms = performance.now() - started;
  return { ms, sent: rtts.length, notAA, ackP50: percentile(rtts, 50), ackP99: percentile(rtts, 99) };
}

async function paced(spec: Omit<SendersSpec, 'perSender'> & { rate: number; durationMs: number; waitMs: number }): Promise<PacedResult> {
  const perSender = Math.max(2, Math.round((spec.rate * spec.durationMs) / 1000 / spec.apps.length));
  const interval = (1000 * spec.apps.length) / spec.rate;
  const messages = spec.apps.map((app) => Array.from({ length: perSender }, (_, k) => message(app, spec.tag, k)));
  const conns = await connectAll(spec);
  const sentAt = new Map<string, number>();
  const rtts: number[] = [];
  let notAA = 0;
  let maxLagMs = 0;
  const acks: Promise<void>[] = [];
  const t0 = performance.now() + 5;
  await Promise.all(
    conns.map(
      (conn, i) =>
        new Promise<void>((done) => {
          const msgs = messages[i]!;
          // Senders are spread evenly over one interval, then each keeps its own schedule.
          const due = (k: number): number => t0 + (i / conns.length) * interval + k * interval;
          let k = 0;
          const tick = (): void => {
            for (let now = performance.now(); k < msgs.length && due(k) <= now; k++, now = performance.now()) {
              const { payload, key } = msgs[k]!;
              maxLagMs = Math.max(maxLagMs, now - due(k));
              const t = performance.now();
              sentAt.set(key, t);
              acks.push(
                conn.send(payload).then((ack) => {
                  rtts.push(performance.now() - t);
                  if (!isAA(ack)) notAA++;
                }),
              );
            }
            if (k < msgs.length) setTimeout(tick, Math.max(0, due(k) - performance.now()));
            else done();
          };
          setTimeout(tick, Math.max(0, due(0) - performance.now()));
        }),
    ),
  );
  const ms = performance.now() - t0;
  try {
    await Promise.all(acks);
  } finally {
    for (const c of conns) c.close();
  }
  const deadline = performance.now() + spec.waitMs;
  while (performance.now() < deadline && [...sentAt.keys()].some((key) => !arrivals.has(key))) await new Promise((r) => setTimeout(r, 20));
  const latencies: number[] = [];
  let missing = 0;
  for (const [key, t] of sentAt) {
    const at = arrivals.get(key);
    if (at === undefined) missing++;
    else latencies.push(at - t);
  }
  return { ms, sent: sentAt.size, notAA, ackP50: percentile(rtts, 50), ackP99: percentile(rtts, 99), latencies, missing, maxLagMs };
}

async function handle(m: Command): Promise<unknown> {
  switch (m.cmd) {
    case 'closed':
      return closed(m);
    case 'paced':
      return paced(m);
    case 'count':
      return received;
    case 'reset':
      received = 0;
      arrivals.clear();
      return true;
    case 'exit':
      receiver.closeAllConnections();
      receiver.close();
      setImmediate(() => process.exit(0));
      return true;
  }
}

if (process.send) {
  process.on('message', (m: Command) => {
    handle(m).then(
      (result) => process.send?.({ id: m.id, result }),
      (err: unknown) => process.send?.({ id: m.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
    );
  });
  receiver.listen(0, '127.0.0.1', () => process.send?.({ ready: (receiver.address() as AddressInfo).port }));
}
