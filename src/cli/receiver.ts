/**
 * @module cli/receiver — a webhook receiver for developers (`ehrsync listen`, and the demo's
 * built-in endpoint): verifies each request's signature, either scheme, as a receiving app would,
 * prints the event as one readable line (or JSON), answers 200 or 401, and can forward the
 * request unchanged to a local app.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { EventEnvelope } from '../domain/events.js';

/** How a request's signature checked out. */
export interface Verification {
  verified: boolean;
  scheme: 'cobalt' | 'standard' | 'none';
  reason?: string;
}

const TOLERANCE_S = 5 * 60;

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a webhook with any of `secrets`: Standard Webhooks when `webhook-signature` is present
 * (HMAC-SHA256 over `id.timestamp.body`, key = base64 after `whsec_`, timestamp within 5 minutes
 * of `nowS`), else Cobalt's `cobalt-verification` (hex HMAC-SHA256 of the body, key = the secret).
 */
export function verifyWebhook(body: string, headers: IncomingHttpHeaders, secrets: readonly string[], nowS: number): Verification {
  const standard = header(headers, 'webhook-signature');
  if (standard !== undefined) {
    const id = header(headers, 'webhook-id') ?? '';
    const ts = header(headers, 'webhook-timestamp') ?? '';
    if (!/^\d+$/.test(ts) || Math.abs(nowS - Number(ts)) > TOLERANCE_S) return { verified: false, scheme: 'standard', reason: 'timestamp missing or outside 5 minutes' };
    for (const secret of secrets) {
      const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
      const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
      for (const part of standard.split(' ')) {
        const [version, sig] = part.split(',');
        if (version === 'v1' && sig !== undefined && equal(sig, expected)) return { verified: true, scheme: 'standard' };
      }
    }
    return { verified: false, scheme: 'standard', reason: 'no signature matches' };
  }
  const cobalt = header(headers, 'cobalt-verification');
  if (cobalt === undefined) return { verified: false, scheme: 'none', reason: 'no signature header' };
  for (const secret of secrets) {
    if (equal(cobalt, createHmac('sha256', secret).update(body).digest('hex'))) return { verified: true, scheme: 'cobalt' };
  }
  return { verified: false, scheme: 'cobalt', reason: 'signature does not match' };
}

/** One readable line for an event: when it was detected (its `created`, not the arrival: retries arrive later), type, clinic, the record, what changed, attempt, verification. */
export function describeEvent(e: EventEnvelope, attempt: string | undefined, v: Verification, color: boolean): string {
  const d = e.data as unknown as Record<string, unknown>;
  const paint = (code: number, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  let detail: string;
  switch (e.type) {
    case 'appointment.created':
      // Cobalt's created payload carries no EHR id, only ehrsync's appointment_id: say which it is.
      detail = `appointment ${String(d.appointment_id)} (ehrsync id) patient ${String(d.mrn)} with ${String(d.provider_name)} at ${String(d.date_time)}`;
      break;
    case 'appointment.status_updated':
      detail = `${String(d.ehr_appointment_id)} ${String(d.patient_name)}: ${String(d.previous_status)} → ${String(d.status)}`;
      break;
    case 'appointment.updated':
      detail = `${String(d.ehr_appointment_id)} ${String(d.patient_name)}: ${JSON.stringify(d.updated_fields)}`;
      break;
    case 'patient.updated':
      detail = `patient ${String(d.mrn)} ${String(d.patient_name ?? '')}: ${JSON.stringify(d.updated_fields)}`;
      break;
    default:
      detail = JSON.stringify(d).slice(0, 120);
  }
  const mark = v.verified ? paint(32, '✓ verified') : paint(31, `✗ NOT verified (${v.reason ?? ''})`);
  const job = e.job_id ? ` job ${e.job_id}` : '';
  return `${e.created.slice(11, 19)}  ${paint(1, e.type.padEnd(27))} ${(e.access_token_reference_id ?? '-').padEnd(12)} ${detail}  attempt ${attempt ?? '?'}${job}  ${mark}`;
}

/** Receiver settings. */
export interface ReceiverOptions {
  port: number;
  host?: string;
  /** Secrets to verify with (current and previous during a rotation); read at each request. */
  secrets: () => readonly string[];
  /** Print JSON lines instead of readable ones. */
  json: boolean;
  color: boolean;
  /** Forward every verified request (same body and headers) to this URL. */
  forward?: string;
  write: (line: string) => void;
  now?: () => number;
}

/** Starts the receiver; resolves with its URL and a close function. */
export async function startReceiver(o: ReceiverOptions): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const v = verifyWebhook(body, req.headers, o.secrets(), Math.floor((o.now ?? Date.now)() / 1000));
        let event: EventEnvelope | null = null;
        try {
          event = JSON.parse(body) as EventEnvelope;
        } catch {
          event = null;
        }
        const headers = Object.fromEntries(
          ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-attempt', 'webhook-signature', 'cobalt-verification'].flatMap((h) => (req.headers[h] ? [[h, header(req.headers, h)]] : [])),
        );
        const id = header(req.headers, 'webhook-id') ?? '';
        // A webhook-id already received (a retry after a lost answer, a redelivery): receivers
        // deduplicate on it. With --forward an id counts as received only once the app accepted it
        // (2xx): a retry after the app refused it must reach the app, not be answered "duplicate".
        const duplicate = v.verified && seen.has(id);
        let forwarded: { status: number } | { error: string } | null = null;
        if (v.verified && o.forward && !duplicate) {
          try {
            const fwd = await request(o.forward, { method: 'POST', body, headers: { ...headers } as Record<string, string> });
            await fwd.body.dump();
            forwarded = { status: fwd.statusCode };
          } catch (e) {
            forwarded = { error: (e as Error).message.slice(0, 200) };
          }
        }
        const accepted = forwarded === null || ('status' in forwarded && forwarded.status >= 200 && forwarded.status < 300);
        if (v.verified && accepted) seen.add(id);
        const outcome =
          forwarded === null ? '' : 'status' in forwarded ? `  → app ${forwarded.status}${accepted ? '' : ' (not accepted: ehrsync will retry)'}` : `  → app unreachable (${forwarded.error}; ehrsync will retry)`;
        if (o.json) o.write(JSON.stringify({ verified: v.verified, duplicate, headers, event, ...(forwarded === null ? {} : { forwarded }) }));
        else if (event && typeof event === 'object' && 'type' in event) o.write(`${describeEvent(event, header(req.headers, 'webhook-attempt'), v, o.color)}${duplicate ? '  (duplicate: webhook-id seen before)' : ''}${outcome}`);
        else o.write(`received a body that is not an event (${body.length} bytes)  ${v.verified ? '✓' : '✗'}${outcome}`);
        if (!v.verified) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"signature verification failed"}');
          return;
        }
        if (forwarded !== null) {
          // The app's answer is ehrsync's: a refusal is retried by ehrsync, as it would be without us.
          if ('status' in forwarded) res.writeHead(forwarded.status, { 'content-type': 'application/json' }).end(JSON.stringify({ forwarded: forwarded.status }));
          else res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `forward failed: ${forwarded.error}` }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(duplicate ? '{"received":true,"duplicate":true}' : '{"received":true}');
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${o.host ?? '127.0.0.1'}:${address.port}/webhook`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
