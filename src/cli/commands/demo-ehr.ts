/** @module cli/commands/demo-ehr — `ehrsync demo-ehr`: runs the demo EHR (web page + FHIR R4 API + optional staff simulator) until Ctrl-C. */
import type { Command } from 'commander';
import { ConfigError } from '../../domain/errors.js';
import { startDemoEhr } from '../../demo-ehr/server.js';
import { parsePort } from '../args.js';

/** Registers `ehrsync demo-ehr`. */
export function registerDemoEhr(program: Command): void {
  program
    .command('demo-ehr')
    .description('run the demo EHR: a fake clinic with a front-desk web page and a FHIR R4 API to sync against')
    .option('--port <n>', 'TCP port (0 = any free port)', '4010')
    .option('--host <addr>', 'interface to bind', '127.0.0.1')
    .option('--data-dir <dir>', 'where its SQLite file lives (kept across restarts)', '.ehrsync/demo-ehr')
    .option('--simulate <rate>', 'front-desk changes per minute made at random (0 = off)', '0')
    .option('--native-statuses', 'use athena-style native status codes (f/2/3/x/n) in an extension', false)
    .option('--seed <n>', 'seed of the fake data', '1')
    .option('--timezone <zone>', 'the clinic\'s IANA time zone', 'America/New_York')
    .addHelpText('after', '\nExample:\n  npx ehrsync demo-ehr --port 4010 --simulate 6\n  then open http://127.0.0.1:4010/ and connect ehrsync to it:\n  npx ehrsync connections create --client-id ci_… --connector demo --base-url http://127.0.0.1:4010/fhir\n')
    .action(async (opts: { port: string; host: string; dataDir: string; simulate: string; nativeStatuses: boolean; seed: string; timezone: string }) => {
      const port = parsePort('port', opts.port);
      const rate = Number(opts.simulate);
      if (!Number.isFinite(rate) || rate < 0 || rate > 6000) throw new ConfigError('--simulate must be a number of changes per minute between 0 and 6000.');
      const ehr = await startDemoEhr({
        dataDir: opts.dataDir,
        port,
        host: opts.host,
        simulate: rate,
        nativeStatuses: opts.nativeStatuses,
        seed: Number(opts.seed) || 1,
        timezone: opts.timezone,
        onChange: (c) => process.stdout.write(`staff: ${c.action} ${c.id}\n`),
      });
      process.stdout.write(`demo EHR ${ehr.seeded ? 'seeded a new clinic' : 'reopened its clinic'} in ${opts.dataDir}\n`);
      process.stdout.write(`  web page:  ${ehr.url}/\n  FHIR R4:   ${ehr.fhirUrl}\n  simulator: ${rate > 0 ? `${rate} changes/min` : 'off'}${opts.nativeStatuses ? ', native status codes' : ''}\nCtrl-C to stop.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await ehr.close();
    });
}
