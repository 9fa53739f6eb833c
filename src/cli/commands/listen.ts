/**
 * @module cli/commands/listen — `ehrsync listen`: a local webhook receiver for development that
 * verifies signatures (Cobalt or Standard Webhooks), prints each event, and can forward it.
 */
import type { Command } from 'commander';
import { BadRequestError } from '../../domain/errors.js';
import { parsePort } from '../args.js';
import { startReceiver } from '../receiver.js';

/** Registers `ehrsync listen`. */
export function registerListen(program: Command): void {
  program
    .command('listen')
    .description('receive webhooks locally: verify each signature, print the event, optionally forward it to your app')
    .requiredOption('--secret <secret>', 'the endpoint\'s signing secret (repeat for a rotation: the old and the new)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--port <n>', 'port to listen on (0 = any free port)', '4000')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--forward <url>', 'forward each verified request (same body and headers) to this URL; the app\'s answer is passed back, and an event counts as received once the app answered 2xx')
    .option('--json', 'print one JSON line per request: {"verified","headers","event"}')
    .addHelpText(
      'after',
      '\nExample:\n  npx ehrsync listen --port 4000 --secret whsec_… --forward http://localhost:3000/webhooks/ehr\n  (register http://127.0.0.1:4000/webhook as an endpoint with EHRSYNC_ALLOW_INSECURE_ENDPOINTS=1)\n',
    )
    .action(async (o: { secret: string[]; port: string; host: string; forward?: string; json?: boolean }) => {
      const port = parsePort('port', o.port);
      if (o.forward !== undefined) {
        try {
          new URL(o.forward);
        } catch {
          throw new BadRequestError(`--forward is not a URL: ${o.forward}`);
        }
      }
      const receiver = await startReceiver({
        port,
        host: o.host,
        secrets: () => o.secret,
        json: o.json === true,
        color: process.stdout.isTTY === true,
        forward: o.forward,
        write: (line) => process.stdout.write(`${line}\n`),
      });
      process.stderr.write(`listening on ${receiver.url}${o.forward ? `, forwarding to ${o.forward}` : ''} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await receiver.close();
      // stderr: stdout carries only the events (one line or one JSON object each).
      process.stderr.write('stopped listening\n');
    });
}
