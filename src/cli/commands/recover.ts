/**
 * @module cli/commands/recover — `ehrsync recover --webhook ID --since TIME`: queues again every
 * failed or skipped delivery to an endpoint since a time, and makes those waiting for a retry due
 * now (the store call of
 * `POST /v1/webhook/:id/recover`); with `--wait`, watches them until none is pending. It never
 * delivers itself: a running `serve` with the delivery role does.
 */
import type { Command } from 'commander';
import { isoUtc, systemClock } from '../../domain/clock.js';
import type { DeliveryStatus } from '../../domain/delivery.js';
import type { EventLog } from '../../store/ports.js';
import { CliExit } from '../exit.js';
import { count, elapsed, Progress } from '../progress.js';
import { DB_HELP, print, withStore } from './admin.js';
import type { DbFlags } from './admin.js';

interface RecoverFlags extends DbFlags {
  webhook: string;
  since: string;
  wait?: boolean;
  timeout?: string;
  quiet?: boolean;
}

/** How often `--wait` looks at the deliveries. */
const POLL_MS = 500;

/**
 * `--since` as epoch ms: an ISO 8601 time with a zone (`Z` or `±hh:mm`), or a date (midnight UTC).
 * A time without a zone is refused: it would silently mean this machine's zone.
 */
export function parseSince(v: string): number {
  const ok = /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i.test(v);
  const ms = Date.parse(v);
  if (!ok || Number.isNaN(ms)) {
    throw new CliExit(`--since must be an ISO 8601 time with a time zone, e.g. 2026-11-02T15:00:00Z (or a date, 2026-11-02, meaning midnight UTC); got ${JSON.stringify(v)}.`, 2);
  }
  return ms;
}

/** `--timeout` in milliseconds: a positive number of seconds. */
export function parseTimeout(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new CliExit(`--timeout must be a positive number of seconds; got ${JSON.stringify(v)}.`, 2);
  return n * 1000;
}

/** What `--wait` saw last. */
interface Watched {
  counts: Record<DeliveryStatus, number>;
  timedOut: boolean;
}

function describe(c: Record<DeliveryStatus, number>): string {
  const total = c.pending + c.succeeded + c.failed + c.skipped;
  const parts = [`${count(c.succeeded)}/${count(total)} delivered`, `${count(c.pending)} pending`];
  if (c.failed > 0) parts.push(`${count(c.failed)} failed again`);
  if (c.skipped > 0) parts.push(`${count(c.skipped)} skipped`);
  return parts.join(', ');
}

/** Watches the endpoint's deliveries created in [since, at] until none is pending or the timeout passes. */
async function watch(store: EventLog, endpointId: string, since: number, at: number, timeoutMs: number, progress: Progress): Promise<Watched> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await store.countEndpointDeliveries(endpointId, { createdFrom: since, createdTo: at, finishedFrom: at });
    if (counts.pending === 0) {
      progress.line(describe(counts));
      return { counts, timedOut: false };
    }
    if (Date.now() >= deadline) {
      progress.line(progress.paint('yellow', describe(counts)));
      return { counts, timedOut: true };
    }
    progress.update(describe(counts));
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

/** Registers `ehrsync recover`. */
export function registerRecover(program: Command): void {
  program
    .command('recover')
    .description('queue again every failed or skipped delivery to a webhook endpoint since a time, and send those waiting for a retry now (like POST /v1/webhook/:id/recover); --wait watches them go out')
    .requiredOption('--webhook <id>', 'the webhook endpoint id: webhook_id in the registration\'s answer (or the id of an entry of webhook_urls in GET /v1/webhook)')
    .requiredOption('--since <time>', 'deliveries created at or after this ISO 8601 time, e.g. 2026-11-02T15:00:00Z')
    .option('--wait', 'then show their progress until none is pending (a running `serve` with the delivery role sends them)')
    .option('--timeout <seconds>', 'with --wait: give up waiting after this long, default 600 (the deliveries stay queued)')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print the result as one JSON object: queued; with --wait also delivered, failed, skipped, pending, timed_out, duration_ms')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText(
      'after',
      `
This command only queues: a running \`ehrsync serve\` whose roles include delivery, on the same
database, sends the deliveries (same webhook-id as before, a new retry cycle). With --wait it
watches every delivery to the endpoint created since --since that is pending after the recovery,
until none is: one updating line on stderr on a terminal; otherwise a line when the counts change
(at most every 2 s, and every 30 s if they do not).
Running it again is safe: it never queues a delivery twice (those still waiting for a retry are
tried again at once), and watches what is pending.
A disabled endpoint is refused: enable it first (POST /v1/webhook/:id/enable).

Exit codes: 0 queued (with --wait: all delivered); 1 with --wait, some failed again or the
timeout passed; 2 usage error, bad --since, unknown or disabled webhook.

Examples:
  npx ehrsync recover --webhook 9b1e… --since 2026-11-02T15:00:00Z
  npx ehrsync recover --webhook 9b1e… --since 2026-11-02 --wait --timeout 300 --json
`,
    )
    .action(async (o: RecoverFlags) => {
      const since = parseSince(o.since);
      if (since > systemClock.now()) throw new CliExit(`--since ${o.since} is in the future: nothing can have failed since then; give the time the outage began.`, 2);
      if (o.timeout !== undefined && !o.wait) throw new CliExit('--timeout only applies with --wait (how long to watch the deliveries go out); add --wait or drop --timeout.', 2);
      const timeoutMs = parseTimeout(o.timeout ?? '600');
      await withStore(o, async (store) => {
        const endpoint = await store.getEndpoint(o.webhook);
        if (!endpoint) throw new CliExit(`--webhook ${o.webhook}: no such webhook endpoint in this database; it is the webhook_id registration answered, and an account lists its endpoints with GET /v1/webhook (the id of each entry of webhook_urls).`, 2);
        if (!endpoint.enabled) {
          throw new CliExit(`webhook ${endpoint.id} is disabled (${endpoint.disabledReason ?? 'no reason recorded'}); enable it first with POST /v1/webhook/${endpoint.id}/enable, then recover.`, 2);
        }
        const progress = new Progress(`recover ${endpoint.id}:`, { quiet: o.quiet });
        const at = systemClock.now();
        const queued = await store.recoverEndpointDeliveries(endpoint.id, since, at);
        const result: Record<string, unknown> = { webhook_id: endpoint.id, since: isoUtc(since), queued };
        const queuedText = `queued ${count(queued)} ${queued === 1 ? 'delivery' : 'deliveries'} again (failed, skipped or waiting for a retry, since ${isoUtc(since)})`;
        if (!o.wait) {
          print(o.json, result, `${queuedText}; a running \`ehrsync serve\` (delivery role) sends them.`);
          return;
        }
        progress.line(`${queuedText}; waiting for \`ehrsync serve\` (delivery role) to send them`);
        // The watch counts every delivery of the period still to go, not only the ones queued
        // again: say what the others are, or "19/19 delivered" after "queued 16" looks like a bug.
        const others = (await store.countEndpointDeliveries(endpoint.id, { createdFrom: since, createdTo: at, finishedFrom: at })).pending - queued;
        if (others > 0) progress.line(`also watching ${count(others)} already pending (due now, or held behind an earlier event about the same appointment or patient)`);
        const w = await watch(store, endpoint.id, since, at, timeoutMs, progress);
        const c = w.counts;
        Object.assign(result, { delivered: c.succeeded, failed: c.failed, skipped: c.skipped, pending: c.pending, timed_out: w.timedOut, duration_ms: progress.ms() });
        print(o.json, result, `${queuedText}\n${describe(c)} in ${elapsed(progress.ms())}`);
        if (w.timedOut) {
          throw new CliExit(
            `timed out after ${elapsed(timeoutMs)} with ${count(c.pending)} deliveries to webhook ${endpoint.id} still pending; they stay queued. Is \`ehrsync serve\` with the delivery role running on this database? Run this command again to keep watching, or raise --timeout.`,
            1,
          );
        }
        if (c.failed + c.skipped > 0) {
          throw new CliExit(`${count(c.failed + c.skipped)} of the deliveries to webhook ${endpoint.id} failed again (or were skipped: endpoint disabled); see GET /v1/webhook/${endpoint.id}/health.`, 1);
        }
      });
    });
}
