/** `ehrsync demo --json` as a child process, for the end-to-end demo tests: its ready line and the webhooks its receiver printed. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One webhook as the demo's receiver prints it with `--json`. */
export interface Received {
  verified: boolean;
  headers: Record<string, string>;
  event: { id: string; type: string; data: Record<string, unknown> };
}

/** A running demo. */
export interface Demo {
  child: ChildProcess;
  /** The ready line: URLs, credentials, ports. */
  ready: Record<string, string>;
  /** Webhooks received so far, in order. */
  events: Received[];
  /** SIGINT, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `node bin/ehrsync.js demo <args> --json` and resolves once it printed its ready line. */
export async function startDemoProcess(args: readonly string[]): Promise<Demo> {
  const child = spawn(process.execPath, ['bin/ehrsync.js', 'demo', ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events: Received[] = [];
  let onReady: (r: Record<string, string>) => void = () => {};
  const ready = new Promise<Record<string, string>>((resolve) => (onReady = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const v = JSON.parse(line) as Record<string, unknown>;
    if ('api_url' in v) onReady(v as Record<string, string>);
    else events.push(v as unknown as Received);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const r = await Promise.race([ready, exited.then(() => Promise.reject(new Error('demo exited before it was ready')))]);
  return {
    child,
    ready: r,
    events,
    async stop() {
      child.kill('SIGINT');
      await exited;
    },
  };
}
