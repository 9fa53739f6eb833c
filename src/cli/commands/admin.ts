/**
 * @module cli/commands/admin — `ehrsync accounts …`, `ehrsync connections …`, `ehrsync migrate`:
 * the same operations as the admin API, straight on the database.
 */
import type { Command } from 'commander';
import { createAccount, createConnection, CONNECTOR_KINDS } from '../../app/services.js';
import { systemClock } from '../../domain/clock.js';
import { BadRequestError, ConfigError } from '../../domain/errors.js';
import { SecretBox } from '../../domain/secrets.js';
import { openStore } from '../../store/open.js';
import type { Store } from '../../store/ports.js';
import { loadConfig } from '../config.js';
import type { Config, RawConfig } from '../config.js';

/** The flags every database command takes. */
export interface DbFlags {
  database?: string;
  config?: string;
  json?: boolean;
}

/** Runs `fn` with the store (and secret box, and config) of `--database`/`--config`, closing the store after. */
export async function withStore<T>(flags: DbFlags, fn: (store: Store, box: SecretBox, config: Config) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  // Only commands that make something new (accounts create, migrate) may create the database.
  const config = loadConfig({ database: flags.database, config: flags.config } as RawConfig, process.env, { existingDatabase: options.create !== true });
  const store = await openStore(config.database);
  try {
    return await fn(store, new SecretBox(config.encryptionKey), config);
  } finally {
    await store.close();
  }
}

/** Prints a command's result to stdout: `value` as one JSON line with `--json`, `text` otherwise. */
export function print(json: boolean | undefined, value: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/** Rows under a header line, each column padded to its widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** Help of `--database`. */
export const DB_HELP = 'SQLite file or postgres:// URL (default ./data/ehrsync.db, or EHRSYNC_DATABASE_URL)';

/** Registers the admin commands. */
export function registerAdmin(program: Command): void {
  const accounts = program
    .command('accounts')
    .description('manage customer accounts (API clients)')
    .addHelpText('after', '\nExamples:\n  npx ehrsync accounts create --name "Acme Health" --json\n  npx ehrsync accounts list --database .ehrsync/demo/ehrsync.db\n');
  accounts
    .command('create')
    .description('create an account and print its client_id and client_secret (the secret is shown only once)')
    .requiredOption('--name <name>', 'the account\'s name, e.g. "Acme Health"')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print {"client_id","client_secret","account_id"} as JSON')
    .addHelpText('after', '\nExample:\n  npx ehrsync accounts create --name "Acme Health" --json\n')
    .action(async (o: DbFlags & { name: string }) => {
      await withStore(o, async (store) => {
        const { account, clientSecret } = await createAccount(store, o.name, systemClock.now());
        print(o.json, { client_id: account.clientId, client_secret: clientSecret, account_id: account.id }, `client_id:     ${account.clientId}\nclient_secret: ${clientSecret}\n(store the secret now: it is not shown again)`);
      }, { create: true });
    });
  accounts
    .command('list')
    .description('list accounts')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  npx ehrsync accounts list --database ./data/ehrsync.db --json\n')
    .action(async (o: DbFlags) => {
      await withStore(o, async (store) => {
        const list = await store.listAccounts();
        print(o.json, { accounts: list.map((a) => ({ id: a.id, name: a.name, client_id: a.clientId })) }, list.length === 0 ? '(no accounts)' : table(['CLIENT ID', 'NAME'], list.map((a) => [a.clientId, a.name])));
      });
    });

  const connections = program
    .command('connections')
    .description('manage clinic EHR connections')
    .addHelpText('after', '\nExamples:\n  npx ehrsync connections list --database .ehrsync/demo/ehrsync.db\n  npx ehrsync connections create --client-id ci_abc --connector demo --base-url http://127.0.0.1:4010/fhir --json\n');
  connections
    .command('create')
    .description('connect a clinic\'s EHR to an account and print the connection\'s access_token (shown only once)')
    .requiredOption('--client-id <id>', 'the account\'s client_id')
    .requiredOption('--connector <kind>', `one of: ${CONNECTOR_KINDS.join(', ')}`)
    .option('--base-url <url>', 'the EHR\'s FHIR base URL (fhir, demo)')
    .option('--sending-application <msh3>', 'hl7v2: MSH-3 of the feed\'s messages (the sending application), e.g. EPIC')
    .option('--sending-facility <msh4>', 'hl7v2: MSH-4 of the feed\'s messages; omit to take every facility of that application')
    .option('--allow-from <list>', 'hl7v2: comma-separated IPs or CIDR ranges the sender may connect from')
    .option('--mrn-system <id>', 'hl7v2: assigning authority or type code of the MRN in PID-3 (default: the identifier typed MR)')
    .option('--default-charset <name>', 'hl7v2: character set of messages with an empty MSH-18, e.g. 8859/1 (default UTF-8)')
    .option('--reference-id <ref>', 'access_token_reference_id echoed in every event')
    .option('--timezone <zone>', 'the clinic\'s IANA time zone (default UTC; required for hl7v2)')
    .option('--interval <seconds>', 'seconds between syncs', '60')
    .option('--token <bearer>', 'a static bearer token for the EHR (stored encrypted)')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print {"access_token", ...} as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  npx ehrsync connections create --client-id ci_abc --connector demo --base-url http://127.0.0.1:4010/fhir --reference-id clinic_1 --timezone America/New_York --json\n' +
        '  npx ehrsync connections create --client-id ci_abc --connector hl7v2 --sending-application EPIC --sending-facility CLINIC1 --allow-from 10.1.0.0/16 --timezone America/Chicago\n',
    )
    .action(async (o: DbFlags & ConnectionFlags) => {
      await withStore(o, async (store, box) => {
        const found = await store.findAccountByClientId(o.clientId);
        if (!found) throw new ConfigError(`--client-id ${o.clientId}: no such account; list them with \`npx ehrsync accounts list\`.`);
        const interval = Number(o.interval);
        if (!Number.isFinite(interval)) throw new BadRequestError('--interval must be a number of seconds.');
        const { connection, accessToken } = await createConnection(
          store,
          box,
          {
            accountId: found.account.id,
            connector: o.connector,
            baseUrl: o.baseUrl,
            referenceId: o.referenceId ?? null,
            timezone: o.timezone,
            syncIntervalSeconds: interval,
            config: connectorConfig(o),
          },
          systemClock.now(),
        );
        print(
          o.json,
          { access_token: accessToken, connection_id: connection.id, connector: connection.connector, reference_id: connection.referenceId },
          `access_token:  ${accessToken}\nconnection_id: ${connection.id}\n(store the token now: it is not shown again)`,
        );
      });
    });
  connections
    .command('list')
    .description('list connections with their sync state')
    .option('--client-id <id>', 'only this account\'s')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  npx ehrsync connections list\n  npx ehrsync connections list --client-id ci_abc --json\n')
    .action(async (o: DbFlags & { clientId?: string }) => {
      await withStore(o, async (store) => {
        const account = o.clientId ? (await store.findAccountByClientId(o.clientId))?.account : undefined;
        if (o.clientId && !account) throw new ConfigError(`--client-id ${o.clientId}: no such account.`);
        const list = await store.listConnections(account?.id);
        const rows = list.map((c) => ({ id: c.id, connector: c.connector, reference_id: c.referenceId, enabled: c.enabled, baseline_at: c.baselineAt, consecutive_failures: c.consecutiveFailures }));
        print(
          o.json,
          { connections: rows },
          rows.length === 0
            ? '(no connections)'
            : table(
                ['ID', 'CONNECTOR', 'REFERENCE', 'STATE', 'BASELINE', 'FAILURES'],
                rows.map((r) => [r.id, r.connector, r.reference_id ?? '-', r.enabled ? 'enabled' : 'disabled', r.baseline_at === null ? 'not yet' : new Date(r.baseline_at).toISOString(), String(r.consecutive_failures)]),
              ),
        );
      });
    });

  for (const [verb, enabled, what] of [
    ['disable', false, 'stop syncing a connection (and receiving its HL7 feed: messages are answered AR) until it is enabled again; its data stays'],
    ['enable', true, 'sync a disabled connection again (an HL7 feed\'s messages are accepted again)'],
  ] as const) {
    connections
      .command(verb)
      .description(what)
      .requiredOption('--connection <id>', 'the connection id (`npx ehrsync connections list`)')
      .option('--database <db>', DB_HELP)
      .option('--config <file>', 'JSON config file')
      .option('--json', 'print JSON')
      .addHelpText('after', `\nExample:\n  npx ehrsync connections ${verb} --connection 3f2a9c…\n`)
      .action(async (o: DbFlags & { connection: string }) => {
        await withStore(o, async (store) => {
          const updated = await store.updateConnection(o.connection, { enabled });
          if (!updated) throw new ConfigError(`--connection ${o.connection}: no such connection; list them with \`npx ehrsync connections list\`.`);
          print(o.json, { connection_id: updated.id, enabled: updated.enabled }, `connection ${updated.id} ${enabled ? 'enabled' : 'disabled'}`);
        });
      });
  }

  program
    .command('purge')
    .description('delete events older than N days whose deliveries are all final (the retention job serve also runs every 6 hours)')
    .requiredOption('--older-than-days <n>', 'age in days')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  npx ehrsync purge --older-than-days 30 --json\n')
    .action(async (o: DbFlags & { olderThanDays: string }) => {
      const days = Number(o.olderThanDays);
      if (!Number.isFinite(days) || days < 0) throw new BadRequestError('--older-than-days must be a number of days, 0 or more.');
      await withStore(o, async (store) => {
        let total = 0;
        for (;;) {
          const n = await store.purgeEvents(systemClock.now() - days * 86_400_000, 5000);
          total += n;
          if (n < 5000) break;
        }
        print(o.json, { events_deleted: total }, `deleted ${total} events`);
      });
    });

  program
    .command('erase-patient')
    .description('delete everything stored about one patient of a connection: events, deliveries, attempts, projection, quarantine')
    .requiredOption('--connection <id>', 'the connection id')
    .option('--patient-ehr-id <id>', 'the patient\'s EHR id')
    .option('--mrn <mrn>', 'or the patient\'s MRN')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  npx ehrsync erase-patient --connection 3f2a… --mrn 44235\n')
    .action(async (o: DbFlags & { connection: string; patientEhrId?: string; mrn?: string }) => {
      if (!o.patientEhrId && !o.mrn) throw new BadRequestError('give --patient-ehr-id or --mrn.');
      await withStore(o, async (store) => {
        if (!(await store.getConnection(o.connection))) throw new ConfigError(`--connection ${o.connection}: no such connection; list them with \`npx ehrsync connections list\`.`);
        let ehrId = o.patientEhrId;
        if (!ehrId) {
          const found = await store.listPatients({ connectionId: o.connection, mrn: o.mrn, limit: 2, offset: 0 });
          if (found.rows.length === 0) throw new ConfigError(`--mrn ${o.mrn}: no such patient on this connection.`);
          // Erasing the wrong one of two cannot be undone: make the operator choose.
          if (found.total > 1) throw new ConfigError(`--mrn ${o.mrn}: ${found.total} patients on this connection have this MRN; name one with --patient-ehr-id (GET /v1/patients?mrn=… lists them).`);
          ehrId = found.rows[0]!.record.ehr_patient_id;
        }
        const erased = await store.erasePatient(o.connection, ehrId);
        print(o.json, erased, `erased: ${erased.events} events, ${erased.appointments} appointments, ${erased.patients} patient records, ${erased.quarantined} quarantined records, ${erased.operations} finished writes`);
      });
    });

  program
    .command('migrate')
    .description('apply pending database migrations (also done at every start)')
    .option('--database <db>', DB_HELP)
    .option('--config <file>', 'JSON config file')
    .addHelpText('after', '\nExamples:\n  npx ehrsync migrate --database ./data/ehrsync.db\n  EHRSYNC_DATABASE_URL=postgres://db/ehrsync npx ehrsync migrate\n')
    .action(async (o: DbFlags) => {
      await withStore(o, async () => {
        process.stdout.write('migrations applied\n');
      }, { create: true });
    });
}

/** `connections create` flags. */
interface ConnectionFlags {
  clientId: string;
  connector: string;
  baseUrl?: string;
  referenceId?: string;
  timezone?: string;
  interval: string;
  token?: string;
  sendingApplication?: string;
  sendingFacility?: string;
  allowFrom?: string;
  mrnSystem?: string;
  defaultCharset?: string;
}

/** The connector config the flags describe (the connector's validation names a bad one). */
function connectorConfig(o: ConnectionFlags): Record<string, unknown> {
  if (o.connector === 'hl7v2') {
    const config: Record<string, unknown> = { sendingApplication: o.sendingApplication };
    if (o.sendingFacility !== undefined) config.sendingFacility = o.sendingFacility;
    if (o.allowFrom !== undefined) config.allowFrom = o.allowFrom.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (o.mrnSystem !== undefined) config.mrnSystem = o.mrnSystem;
    if (o.defaultCharset !== undefined) config.defaultCharset = o.defaultCharset;
    if (o.sendingApplication === undefined) throw new BadRequestError('--sending-application is required for an hl7v2 connection: the MSH-3 its interface engine sends, e.g. --sending-application EPIC.');
    return config;
  }
  return o.token ? { auth: { type: 'bearer', token: o.token } } : {};
}
