/**
 * @module cli/commands/sync — `ehrsync sync --connection ID`: one sync of one connection now,
 * through the same engine and the same lease as the scheduler of `serve` (so the two never sync a
 * connection at once), with progress on stderr and the result on stdout.
 */
import type { Command } from 'commander';
import { isPushConnector } from '../../domain/entities.js';
import { createConnector } from '../../connectors/registry.js';
import type { EhrConnector } from '../../connectors/connector.js';
import { systemClock } from '../../domain/clock.js';
import { newId } from '../../domain/ids.js';
import { describeDatabase } from '../../store/open.js';
import type { Connection } from '../../domain/entities.js';
import { syncLeaseMs } from '../../sync/scheduler.js';
import type { SyncOutcome, SyncProgress } from '../../sync/sync-engine.js';
import { syncConnection } from '../../sync/sync-engine.js';
import { CliExit } from '../exit.js';
import { count, elapsed, Progress } from '../progress.js';
import { DB_HELP, print, withStore } from './admin.js';
import type { DbFlags } from './admin.js';

interface SyncFlags extends DbFlags {
  connection: string;
  quiet?: boolean;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${count(n)} ${n === 1 ? one : many}`;

/** What a finished step handled, in words. */
export function describeStep(p: SyncProgress): string {
  switch (p.step) {
    case 'schedule read':
      return `schedule read (${plural(p.count, 'appointment')})`;
    case 'moved or deleted checked':
      return `moved or deleted checked (${plural(p.count, 'appointment')} read directly)`;
    case 'changed patients read':
      // The EHR's "updated since the last sync" (with an overlap): compared field by field, so an
      // unchanged one among them yields no event.
      return `recently updated patients read (${plural(p.count, 'patient')}; unchanged ones yield no event)`;
    case 'planned':
      return `planned (${plural(p.count, 'event')})`;
    case 'committed':
      return 'committed';
  }
}

/** The JSON result of a sync. */
export function syncResult(connectionId: string, outcome: SyncOutcome, durationMs: number): Record<string, unknown> {
  if (outcome.status === 'failed') {
    return { status: 'failed', connection_id: connectionId, run_id: outcome.runId, error_code: outcome.errorCode, error_message: outcome.errorMessage, duration_ms: durationMs };
  }
  const events = Object.values(outcome.counts).reduce((a, n) => a + (n ?? 0), 0);
  return { status: 'succeeded', connection_id: connectionId, run_id: outcome.runId, baseline: outcome.baseline, events, counts: outcome.counts, quarantined: outcome.quarantined, duration_ms: durationMs };
}

function summary(outcome: Extract<SyncOutcome, { status: 'succeeded' }>, durationMs: number): string {
  const lines = [`sync succeeded in ${elapsed(durationMs)} (run ${outcome.runId})`];
  const counts = Object.entries(outcome.counts).filter(([, n]) => (n ?? 0) > 0);
  if (outcome.baseline) lines.push('baseline: the first sync of this connection records what the EHR holds and sends no events (unless replay_baseline is on)');
  lines.push(counts.length === 0 ? 'events: none' : `events: ${counts.map(([type, n]) => `${count(n ?? 0)} ${type}`).join(', ')}`);
  if (outcome.quarantined > 0) lines.push(`quarantined: ${plural(outcome.quarantined, 'record')} (see GET /v1/quarantine)`);
  return lines.join('\n');
}

/** Registers `ehrsync sync`. */
export function registerSync(program: Command): void {
  program
    .command('sync')
    .description('sync one connection now (the same sync and lease as `serve`): progress on stderr, the result on stdout')
    .requiredOption('--connection <id>', 'the connection id (list them with `npx ehrsync connections list`)')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print the result as one JSON object: status, run_id, baseline, events, counts per event type, quarantined, duration_ms (failed: error_code, error_message)')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText(
      'after',
      `
Progress goes to stderr, one line per step with the time elapsed (colours only on a terminal, and
never with NO_COLOR set). Events found are committed and delivered as usual: by a running
\`ehrsync serve\` (delivery role) on the same database. If a \`serve\` process is syncing the same
connection right now, this command stops with a message instead of syncing it twice.

Exit codes: 0 synced; 1 the sync failed (the EHR's error is printed and recorded in the sync
runs) or the connection is being synced elsewhere; 2 usage error or unknown connection.

Examples:
  npx ehrsync sync --connection 3f2a9c… --database ./data/ehrsync.db
  npx ehrsync sync --connection 3f2a9c… --json | jq .counts
`,
    )
    .action(async (o: SyncFlags) => {
      await withStore(o, async (store, secretBox, config) => {
        const found = await store.getConnection(o.connection);
        const where = describeDatabase(config.database);
        if (!found) throw new CliExit(`--connection ${o.connection}: no such connection in ${where}; list them with \`npx ehrsync connections list --database ${where}\`.`, 2);
        if (isPushConnector(found.connector)) throw new CliExit(`--connection ${found.id} is an ${found.connector} connection: its EHR pushes each change to the HL7 listener (\`serve --hl7-port\`); there is nothing to sync.`, 2);
        const progress = new Progress(`sync ${found.id}:`, { quiet: o.quiet });
        const timeoutMs = config.syncTimeoutSeconds * 1000;
        const owner = `cli-${process.pid}-${newId().slice(0, 8)}`;
        const now = systemClock.now();
        const connection = await store.claimConnection(found.id, now, now + syncLeaseMs(timeoutMs), owner);
        if (!connection) {
          throw new CliExit(`connection ${found.id} is being synced by another process right now (a running \`ehrsync serve\`, or another \`ehrsync sync\`, holds its lease); its result will be in GET /v1/sync-runs, or try again when that sync has finished.`, 1);
        }
        // Ctrl-C or SIGTERM: before the commit nothing of the sync is stored (one transaction); give
        // the lease back so `serve` need not wait for it to expire.
        let committed = false;
        const onSignal = (signal: NodeJS.Signals): void => {
          progress.line(committed ? 'interrupted after the commit: this sync\'s events are stored' : 'interrupted: nothing of this sync was committed');
          void store.releaseConnection(connection.id, owner).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        let connector: EhrConnector | null = null;
        let outcome: SyncOutcome;
        try {
          progress.line(connection.baselineAt === null ? 'reading the EHR (first sync: a baseline, it reads the whole window and sends no events)' : 'reading the EHR');
          outcome = await syncConnection(
            {
              store,
              clock: systemClock,
              timeoutMs,
              connectorFor: (c: Connection) => (connector = createConnector(c, { secretBox })),
              onProgress: (p) => {
                if (p.step === 'committed') committed = true;
                progress.line(describeStep(p), p.ms);
              },
            },
            connection,
          );
        } finally {
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
          await store.releaseConnection(connection.id, owner).catch(() => {});
          await Promise.resolve((connector as EhrConnector | null)?.close?.()).catch(() => {});
        }
        const durationMs = progress.ms();
        const result = syncResult(connection.id, outcome, durationMs);
        if (outcome.status === 'failed') {
          progress.line(progress.paint('red', `failed: ${outcome.errorCode}`));
          if (o.json) print(true, result, '');
          throw new CliExit(`sync of connection ${connection.id} failed (${outcome.errorCode}): ${outcome.errorMessage}`, 1);
        }
        print(o.json, result, summary(outcome, durationMs));
      });
    });
}
