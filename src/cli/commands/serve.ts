/**
 * @module cli/commands/serve — `ehrsync serve`: the production process. Runs the roles of its
 * configuration (api, sync, delivery) until SIGINT/SIGTERM, then drains and exits.
 */
import type { Command } from 'commander';
import { createConnector } from '../../connectors/registry.js';
import { loadConfig } from '../config.js';
import type { RawConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startRuntime } from '../runtime.js';
import { describeDatabase } from '../../store/open.js';

/**
 * Waits for SIGINT or SIGTERM, keeping the process alive meanwhile: a worker's only open handles
 * may be its database sockets, and while the database is unreachable (a restart) it has none, so
 * without this the event loop would empty and the process exit (code 13) instead of reconnecting.
 */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 3_600_000);
    const on = (sig: string) => () => {
      clearInterval(keepAlive);
      resolve(sig);
    };
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

interface ServeFlags {
  config?: string;
  database?: string;
  host?: string;
  port?: string;
  roles?: string;
  logLevel?: string;
  allowInsecureEndpoints?: boolean;
  hl7Port?: string;
  hl7Host?: string;
}

/** Registers `ehrsync serve`. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run ehrsync: the API, the sync scheduler and webhook delivery (or the roles you choose) until stopped')
    .option('--config <file>', 'JSON config file (see docs/configuration.md)')
    .option('--database <db>', 'SQLite file or postgres:// URL (default ./data/ehrsync.db, or EHRSYNC_DATABASE_URL)')
    .option('--host <host>', 'address the API listens on (default 127.0.0.1)')
    .option('--port <n>', 'API port (default 8080; 0 = any free port)')
    .option('--roles <list>', 'comma-separated subset of api,sync,delivery (default all)')
    .option('--log-level <level>', 'debug, info, warn, error or silent')
    .option('--hl7-port <n>', 'run the HL7 v2 (MLLP) listener for hl7v2 connections on this port (e.g. 2575; 0 = any free port)')
    .option('--hl7-host <host>', 'address the HL7 listener binds (default 127.0.0.1)')
    .option('--allow-insecure-endpoints', 'development only: allow http:// and loopback webhook URLs')
    .addHelpText(
      'after',
      `
Examples:
  npx ehrsync serve                                       # everything in one process, ./data/ehrsync.db
  EHRSYNC_DATABASE_URL=postgres://db/ehrsync EHRSYNC_ENCRYPTION_KEY=... npx ehrsync serve --roles api
  npx ehrsync serve --database postgres://db/ehrsync --roles sync,delivery
  npx ehrsync serve --hl7-port 2575                       # also receive hl7v2 feeds (MLLP) on 127.0.0.1:2575
`,
    )
    .action(async (o: ServeFlags) => {
      const config = loadConfig({
        config: o.config,
        database: o.database,
        host: o.host,
        port: o.port,
        roles: o.roles,
        logLevel: o.logLevel,
        allowInsecureEndpoints: o.allowInsecureEndpoints,
        hl7Port: o.hl7Port,
        hl7Host: o.hl7Host,
      } as RawConfig);
      const logger = createLogger(config.logLevel);
      const runtime = await startRuntime({ config, logger, createConnector });
      const hl7 = runtime.hl7Address ? `${runtime.hl7Address.host}:${runtime.hl7Address.port}` : null;
      logger.info({ roles: config.roles.join(','), database: describeDatabase(config.database), api_url: runtime.apiUrl, hl7_listener: hl7, key_source: config.encryptionKeySource }, 'ehrsync started');
      process.stderr.write(
        `ehrsync ${config.roles.join(',')} running on ${describeDatabase(config.database)}${runtime.apiUrl ? `; API ${runtime.apiUrl} (docs ${runtime.apiUrl}/docs)` : ''}${hl7 ? `; HL7 listener ${hl7}` : ''}. Ctrl-C to stop.\n`,
      );
      if (config.allowInsecureEndpoints) logger.warn({}, 'allowInsecureEndpoints is on (development only): webhook URLs and EHR addresses may be http:// and loopback');
      if (!hl7 && (await runtime.store.listConnections()).some((c) => c.connector === 'hl7v2')) {
        logger.warn({}, 'hl7v2 connections exist but no HL7 listener runs: start serve with --hl7-port (or EHRSYNC_HL7_PORT)');
      }
      const sig = await untilSignal();
      logger.info({ signal: sig }, 'stopping: finishing work in flight');
      const stopping = Date.now();
      await runtime.close();
      logger.info({ ms: Date.now() - stopping }, 'stopped');
      logger.flush();
    });
}
