/**
 * @module cli/main — the `ehrsync` command. Each subcommand lives in cli/commands/<name>.ts and
 * registers itself here; commands are thin wrappers over the same services the API uses.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EhrsyncError } from '../domain/errors.js';
import { registerAdmin } from './commands/admin.js';
import { registerDemo } from './commands/demo.js';
import { registerDemoEhr } from './commands/demo-ehr.js';
import { registerListen } from './commands/listen.js';
import { registerRecover } from './commands/recover.js';
import { registerServe } from './commands/serve.js';
import { registerSync } from './commands/sync.js';
import { CliExit } from './exit.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Builds the program (tests call commands through it without a process). */
export function buildProgram(): Command {
  const program = new Command('ehrsync')
    .description('Detects what changed in clinics\' EHRs and delivers signed, Cobalt-compatible webhook events.')
    .version(pkg.version, '-v, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true })
    .addHelpText(
      'after',
      `
Every command has --help with examples. Results go to stdout (--json for scripts), progress and
errors to stderr. Exit codes: 0 done, 1 the work failed, 2 usage or configuration error.

Examples:
  npx ehrsync demo                                   # try it: demo EHR → ehrsync → verified webhooks
  npx ehrsync serve --database ./data/ehrsync.db     # run it for real
  npx ehrsync sync --connection 3f2a… --json         # sync one connection now
`,
    )
    // Before adding subcommands: they copy this setting, so usage errors return instead of exiting.
    .exitOverride();
  registerDemo(program);
  registerDemoEhr(program);
  registerAdmin(program);
  registerListen(program);
  registerServe(program);
  registerSync(program);
  registerRecover(program);
  return program;
}

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof CliExit) {
      process.stderr.write(`ehrsync: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof EhrsyncError) {
      process.stderr.write(`ehrsync: ${err.message}\n`);
      return err.code === 'config_invalid' || err.code === 'bad_request' ? 2 : 1;
    }
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e?.code === 'EADDRINUSE') {
      process.stderr.write(
        `ehrsync: port ${e.port ?? ''} on ${e.address ?? 'this machine'} is already in use: stop what uses it (another demo or serve?), or pick another port: --port (and --hl7-port) for serve, --port for demo-ehr; --api-port, --ehr-port, --receiver-port or --hl7-port for demo (0 = any free port). Through npm, flags go after --: npm start -- --api-port 8081.\n`,
      );
      return 2;
    }
    process.stderr.write(`ehrsync: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
