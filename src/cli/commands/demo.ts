/**
 * @module cli/commands/demo — `ehrsync demo`: the main job. For now it runs the core pipeline on
 * its own: an in-memory clinic whose front desk makes changes, synced every few seconds into an
 * embedded SQLite outbox, each detected event printed as one line.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { MemoryConnector } from '../../connectors/memory.js';
import { systemClock } from '../../domain/clock.js';
import type { EventEnvelope } from '../../domain/events.js';
import { openStore } from '../../store/open.js';
import { syncConnection } from '../../sync/sync-engine.js';
import { frontDeskChange, seedClinic } from '../demo-clinic.js';

/** Registers `ehrsync demo`. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the demo: a clinic whose staff change appointments, synced into SQLite, events printed as they are detected')
    .option('--data-dir <dir>', 'where the demo keeps its database', '.ehrsync/demo')
    .option('--interval <seconds>', 'seconds between syncs', '3')
    .option('--duration <seconds>', 'stop after this many seconds (0 = run until Ctrl-C)', '0')
    .addHelpText('after', '\nExample:\n  npx ehrsync demo --interval 2 --duration 20\n')
    .action(async (opts: { dataDir: string; interval: string; duration: string }) => {
      const intervalMs = Math.max(0.2, Number(opts.interval)) * 1000;
      const durationMs = Number(opts.duration) * 1000;
      const store = await openStore(join(opts.dataDir, `demo-${Date.now()}.db`));
      const ehr = new MemoryConnector();
      seedClinic(ehr, systemClock.now());
      const account = await store.createAccount({ name: 'Demo', clientId: 'ci_demo', clientSecretHash: '-', now: systemClock.now() });
      const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'demo_clinic', now: systemClock.now() });
      process.stdout.write('ehrsync demo: a clinic of 40 appointments; the front desk makes a change every second.\n');
      process.stdout.write('Each sync diffs the schedule against what ehrsync knew and prints the events it stored.\n');
      process.stdout.write('(Coming next: the demo EHR with its web page, signed webhooks to a local receiver, the API.)\n\n');
      let seen = 0;
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      const started = Date.now();
      const staff = setInterval(() => frontDeskChange(ehr, systemClock.now()), 1000);
      try {
        while (!stop && (durationMs <= 0 || Date.now() - started < durationMs)) {
          const out = await syncConnection({ store, clock: systemClock, connectorFor: () => ehr }, (await store.getConnection(connection.id))!);
          if (out.status === 'succeeded' && out.baseline) process.stdout.write('baseline: the schedule is known; changes from now on become events\n');
          const events = await store.listEvents({ accountId: account.id, afterSeq: seen, limit: 1000 });
          for (const row of events) {
            seen = row.seq;
            const e = JSON.parse(row.body) as EventEnvelope;
            process.stdout.write(`${e.created}  ${e.type.padEnd(27)} ${summary(e)}\n`);
          }
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      } finally {
        clearInterval(staff);
        await store.close();
      }
    });
}

function summary(e: EventEnvelope): string {
  const d = e.data as unknown as Record<string, unknown>;
  if (e.type === 'appointment.status_updated') return `${String(d.ehr_appointment_id)}  ${String(d.previous_status)} → ${String(d.status)}`;
  if ('updated_fields' in d) return `${String(d.ehr_appointment_id ?? d.mrn)}  ${JSON.stringify(d.updated_fields)}`;
  return String(d.ehr_appointment_id ?? d.appointment_id ?? d.mrn ?? '');
}
