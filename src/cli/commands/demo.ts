/**
 * @module cli/commands/demo — `ehrsync demo`, the main job: the demo EHR with its staff simulator,
 * ehrsync itself (API, sync, delivery) on SQLite in a local data directory, and a receiver that
 * verifies every webhook and prints it. A second run resumes from the same directory. With
 * `--connector hl7v2` ehrsync does not poll the EHR: the EHR pushes each change to ehrsync's HL7 v2
 * listener over MLLP (its feed gets connectors/hl7v2's escaping and MLLP client from here).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { request } from 'undici';
import { createAccount, createConnection } from '../../app/services.js';
import { openMllpConnection } from '../../connectors/hl7v2/mllp-client.js';
import { escapeValue, Hl7Message } from '../../connectors/hl7v2/message.js';
import { createConnector } from '../../connectors/registry.js';
import type { Hl7Link } from '../../demo-ehr/hl7-feed.js';
import { DEMO_HL7_STATUS_MAP } from '../../demo-ehr/hl7-feed.js';
import { startDemoEhr } from '../../demo-ehr/server.js';
import { systemClock } from '../../domain/clock.js';
import { BadRequestError, EhrsyncError } from '../../domain/errors.js';
import { parsePort } from '../args.js';
import { resolveConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startReceiver } from '../receiver.js';
import { startRuntime } from '../runtime.js';
import { untilSignal } from './serve.js';
import { lockDataDir } from '../dir-lock.js';

const DEMO_TIMEZONE = 'America/New_York';
/** How ehrsync reads the demo EHR: `demo` polls its FHIR API; `hl7v2` takes the HL7 v2 messages it pushes. */
const DEMO_CONNECTORS = ['demo', 'hl7v2'] as const;
type DemoConnector = (typeof DEMO_CONNECTORS)[number];
/** MSH-3/MSH-4 of the demo EHR's HL7 feed: what its hl7v2 connection routes by. */
const DEMO_HL7_SENDER = { sendingApplication: 'DEMOEHR', sendingFacility: 'DEMOCLINIC' };

/** What the demo remembers between runs (in `<data-dir>/demo.json`, mode 0600: it holds secrets). */
interface DemoState {
  account_id: string;
  client_id: string;
  client_secret: string;
  connection_id: string;
  access_token: string;
  webhook_id: string;
  webhook_secret: string;
  /** How ehrsync reads this demo's EHR; absent in files written before `--connector` existed (`demo`). */
  connector?: DemoConnector;
}

interface DemoFlags {
  dataDir?: string;
  connector: string;
  hl7Port: string;
  apiPort: string;
  ehrPort: string;
  receiverPort: string;
  simulator: boolean;
  simulate: string;
  interval: string;
  json?: boolean;
}

function positive(name: string, v: string, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new BadRequestError(`--${name} must be a number above 0 and at most ${max}; got ${JSON.stringify(v)}.`);
  return n;
}

/**
 * The demo EHR's link to ehrsync's HL7 listener: one MLLP connection, each ACK read with ehrsync's
 * own parser (MSA-1 and MSA-2).
 */
async function mllpLink(host: string, port: number): Promise<Hl7Link> {
  const connection = await openMllpConnection(host, port, { timeoutMs: 10_000 });
  return {
    async send(message) {
      const ack = Hl7Message.parse(await connection.send(Buffer.from(message, 'utf8')));
      const msa = ack.segment('MSA');
      return { code: msa?.get(1) ?? '', controlId: msa?.get(2) ?? '' };
    },
    close: () => connection.close(),
  };
}

function readState(file: string): DemoState | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DemoState;
  } catch {
    throw new EhrsyncError('config_invalid', `${file} is not readable JSON: delete the data directory (or pass another --data-dir) to start the demo afresh.`);
  }
}

/** Registers `ehrsync demo`. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the demo: a demo EHR whose staff change the schedule, ehrsync syncing it, and a receiver printing each verified webhook')
    .option('--data-dir <dir>', 'where the demo keeps its EHR, database and credentials (default: .ehrsync/demo, with --connector hl7v2 .ehrsync/demo-hl7v2)')
    .option('--connector <kind>', 'how ehrsync reads the demo EHR: demo (polls its FHIR API) or hl7v2 (the EHR pushes HL7 v2 SIU/ADT messages over MLLP)', 'demo')
    .option('--hl7-port <n>', 'with --connector hl7v2: port of ehrsync\'s HL7 v2 (MLLP) listener on 127.0.0.1 (0 = any free port)', '2575')
    .option('--api-port <n>', 'ehrsync API port (0 = any free port)', '8080')
    .option('--ehr-port <n>', 'demo EHR port (0 = any free port)', '4010')
    .option('--receiver-port <n>', 'webhook receiver port (0 = any free port)', '4020')
    .option('--no-simulator', 'no simulated staff: change the schedule yourself on the demo EHR page')
    .option('--simulate <rate>', 'simulated staff changes per minute', '6')
    .option('--interval <seconds>', 'seconds between syncs (--connector demo)', '5')
    .option('--json', 'print one JSON line when ready (URLs and credentials), then one JSON line per received webhook')
    .addHelpText(
      'after',
      `
Examples:
  npm start                                    # the same as: npx ehrsync demo
  npx ehrsync demo --no-simulator              # make the changes yourself on the demo EHR page
  npx ehrsync demo --connector hl7v2           # the EHR pushes each change as an HL7 v2 message (MLLP)
  npx ehrsync demo --api-port 0 --ehr-port 0 --receiver-port 0 --json
`,
    )
    .action(async (o: DemoFlags) => {
      if (!(DEMO_CONNECTORS as readonly string[]).includes(o.connector)) throw new BadRequestError(`--connector must be one of: ${DEMO_CONNECTORS.join(', ')}; got ${JSON.stringify(o.connector)}.`);
      const connector = o.connector as DemoConnector;
      const hl7 = connector === 'hl7v2';
      const ports = { api: parsePort('api-port', o.apiPort), ehr: parsePort('ehr-port', o.ehrPort), receiver: parsePort('receiver-port', o.receiverPort), hl7: parsePort('hl7-port', o.hl7Port) };
      const intervalS = positive('interval', o.interval, 3600);
      const rate = o.simulator ? positive('simulate', o.simulate, 600) : 0;
      const dataDir = resolve(o.dataDir ?? (hl7 ? '.ehrsync/demo-hl7v2' : '.ehrsync/demo'));
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      // Two demos on one directory would each rewrite the connection and webhook to their own
      // ports, and the first would stop working without saying so.
      lockDataDir(dataDir, 'demo', '--data-dir');
      const stateFile = join(dataDir, 'demo.json');
      let state = readState(stateFile);
      // The directory's demo is one connection of one kind: resuming it as another would leave it unfed.
      const had = state ? (state.connector ?? 'demo') : null;
      if (had !== null && had !== connector) {
        throw new BadRequestError(`${dataDir} holds a demo whose connector is ${had}: run it with --connector ${had}, or give --connector ${connector} another --data-dir.`);
      }
      const color = process.stdout.isTTY === true && !o.json;
      const out = (line: string): void => void process.stdout.write(`${line}\n`);

      const ehr = await startDemoEhr({
        dataDir: join(dataDir, 'ehr'),
        port: ports.ehr,
        host: '127.0.0.1',
        simulate: rate,
        timezone: DEMO_TIMEZONE,
        // Recording from the start: what staff change before ehrsync listens is sent once it does.
        hl7Feed: hl7 ? { ...DEMO_HL7_SENDER, escape: (v) => escapeValue(v) } : undefined,
      });
      let secret = state?.webhook_secret ?? '';
      // Whatever has started is closed again if a later part fails (e.g. a port already taken).
      const receiver = await startReceiver({ port: ports.receiver, host: '127.0.0.1', secrets: () => [secret], json: o.json === true, color, write: out }).catch(async (err: unknown) => {
        await ehr.close();
        throw err;
      });
      const config = resolveConfig({
        database: join(dataDir, 'ehrsync.db'),
        host: '127.0.0.1',
        port: ports.api,
        // Dev mode, for this demo only: the receiver is http:// on loopback.
        allowInsecureEndpoints: true,
        logLevel: 'info',
        syncConcurrency: 2,
        // The HL7 v2 listener, on loopback only: the demo EHR is its one sender.
        ...(hl7 ? { hl7Port: ports.hl7, hl7Host: '127.0.0.1' } : {}),
      });
      const logger = createLogger(config.logLevel, join(dataDir, 'ehrsync.log'));
      const runtime = await startRuntime({ config, logger, createConnector, syncPollMs: 500 }).catch(async (err: unknown) => {
        await Promise.allSettled([ehr.close(), receiver.close()]);
        throw err;
      });
      const stop = async (): Promise<void> => {
        // The feed first: a message in flight stays in the EHR's outbox for the next run.
        await ehr.hl7Feed?.stop();
        await runtime.close();
        await ehr.close();
        await receiver.close();
        logger.flush();
      };
      try {
        const now = systemClock.now();
        const apiUrl = runtime.apiUrl as string;
        if (!state) {
          const { account, clientSecret } = await createAccount(runtime.store, 'Demo Health', now);
          const { connection, accessToken } = await createConnection(
            runtime.store,
            runtime.secretBox,
            hl7
              ? // Never polled: the demo EHR's feed routes to it by MSH-3/MSH-4; its check-in code is local.
                { accountId: account.id, connector: 'hl7v2', config: { ...DEMO_HL7_SENDER, statusMap: { ...DEMO_HL7_STATUS_MAP } }, referenceId: 'demo_clinic', timezone: DEMO_TIMEZONE }
              : { accountId: account.id, connector: 'demo', baseUrl: ehr.fhirUrl, config: { pageSize: 500, rateLimitPerSec: 100 }, referenceId: 'demo_clinic', timezone: DEMO_TIMEZONE, syncIntervalSeconds: intervalS },
            now,
          );
          // The endpoint is registered through the public API, exactly as a customer would.
          const res = await request(`${apiUrl}/v1/webhook`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', client_id: account.clientId, client_secret: clientSecret },
            body: JSON.stringify({ webhook_url: receiver.url }),
          });
          const body = (await res.body.json()) as { webhook_id?: string; webhook_secret?: string; message?: string };
          if (res.statusCode !== 200 || !body.webhook_id || !body.webhook_secret) throw new EhrsyncError('internal', `registering the demo webhook failed: ${body.message ?? res.statusCode}`);
          state = { account_id: account.id, client_id: account.clientId, client_secret: clientSecret, connection_id: connection.id, access_token: accessToken, webhook_id: body.webhook_id, webhook_secret: body.webhook_secret, connector };
          // Written whole or not at all: a half-written file would strand the next run.
          writeFileSync(`${stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
          chmodSync(`${stateFile}.tmp`, 0o600);
          renameSync(`${stateFile}.tmp`, stateFile);
        } else {
          // Ports may differ from the last run (0 = any free port): point the connection and the endpoint at this run's.
          const connection = await runtime.store.getConnection(state.connection_id);
          if (!connection) throw new EhrsyncError('config_invalid', `the demo's connection is missing from ${dataDir}: delete that directory to start afresh.`);
          if (!hl7) await runtime.store.updateConnection(connection.id, { config: { ...connection.config, baseUrl: ehr.fhirUrl }, syncIntervalMs: Math.round(intervalS * 1000) });
          await runtime.store.updateEndpoint(state.webhook_id, { url: receiver.url });
        }
        secret = state.webhook_secret;
        runtime.scheduler?.wakeUp();
        const listener = runtime.hl7Address;
        if (hl7 && (!ehr.hl7Feed || !listener)) throw new EhrsyncError('internal', 'the HL7 v2 listener or the demo EHR\'s feed did not start.');
        const hl7Address = hl7 && listener ? `${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${listener.port}` : undefined;

        const ready = {
          api_url: apiUrl,
          ehr_url: ehr.url,
          ehr_fhir_url: ehr.fhirUrl,
          receiver_url: receiver.url,
          client_id: state.client_id,
          client_secret: state.client_secret,
          access_token: state.access_token,
          webhook_id: state.webhook_id,
          webhook_secret: state.webhook_secret,
          connector,
          ...(hl7Address ? { hl7_address: hl7Address } : {}),
        };
        if (o.json) out(JSON.stringify(ready));
        else out(banner(ready, dataDir, rate, intervalS, color));
        // After the banner, so the webhooks the feed causes print below it.
        if (hl7 && listener) ehr.hl7Feed?.start({ connect: () => mllpLink(listener.host, listener.port), logger });
      } catch (err) {
        await stop().catch(() => {});
        throw err;
      }
      await untilSignal();
      if (!o.json) process.stderr.write('\nstopping… (run the same command again to resume)\n');
      await stop();
    });
}

function banner(r: Record<string, string>, dataDir: string, rate: number, intervalS: number, color: boolean): string {
  const b = (s: string): string => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const staff = rate > 0 ? `simulated staff make ~${rate} changes a minute` : 'no simulator: make changes yourself';
  return [
    b('ehrsync demo is running') + `  (data in ${dataDir}; Ctrl-C stops, running again resumes)`,
    '',
    `  demo EHR     ${r.ehr_url}   ← open it: book, move, check in, cancel, edit patients (${staff})`,
    `  FHIR API     ${r.ehr_fhir_url}`,
    ...(r.hl7_address ? [`  HL7 v2 feed  the demo EHR sends each change as HL7 v2 (SIU/ADT) over MLLP to ${r.hl7_address}, one ACK per message`] : []),
    `  ehrsync API  ${r.api_url}/v1   docs: ${r.api_url}/docs   ${r.hl7_address ? '(no polling: changes are pushed)' : `(syncs every ${intervalS} s)`}`,
    `  receiver     ${r.receiver_url}   verifies each webhook signature`,
    '',
    `  client_id ${r.client_id}   client_secret ${r.client_secret}   access_token ${r.access_token}`,
    `  try: curl -s '${r.api_url}/v1/webhook-events?page_size=5' -H 'client_id: ${r.client_id}' -H 'client_secret: ${r.client_secret}'`,
    '',
    b('Webhooks received') + ' (when the change was detected, type, clinic, what changed, attempt, ✓ = signature verified):',
  ].join('\n');
}
