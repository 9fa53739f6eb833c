/**
 * Fault tests with real processes: `ehrsync serve` workers started as child processes (killed on
 * test end, whatever happened), a webhook receiver that verifies every request with the
 * `standardwebhooks` library and counts requests per (event, endpoint), and a TCP proxy in front
 * of PostgreSQL that can be "restarted" (connections dropped, new ones refused for a while).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { newSigningSecret, SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/ports.js';
import { emitEvents } from './outbox.js';
import { freshSchemaUrl } from './postgres.js';
import { sleep, untilTrue } from './wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export { sleep };

/** Polls `fn` every 50 ms until it is true; throws naming `what` after `timeoutMs`. */
export const until = (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 240_000): Promise<void> => untilTrue(what, fn, timeoutMs, 50);

/** One `ehrsync serve` child process and the last lines it wrote (for failure messages). */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Last lines of stdout + stderr. */
  output: string[];
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once serve says it is running. */
  ready: Promise<void>;
}

/**
 * Starts `node bin/ehrsync.js serve --roles <roles> --database <url> --allow-insecure-endpoints
 * --log-level warn` with EHRSYNC_ENCRYPTION_KEY = `key`. Killed (SIGKILL) when the test ends.
 */
export function startWorker(t: Pick<TestContext, 'after'>, o: { database: string; key: string; roles?: string; env?: Record<string, string> }): WorkerProcess {
  const child = spawn(
    process.execPath,
    ['bin/ehrsync.js', 'serve', '--roles', o.roles ?? 'delivery', '--database', o.database, '--allow-insecure-endpoints', '--log-level', 'warn'],
    { cwd: ROOT, env: { ...process.env, EHRSYNC_ENCRYPTION_KEY: o.key, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  let readyResolve: () => void = () => {};
  let readyReject: (e: Error) => void = () => {};
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => {});
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      output.push(line.slice(0, 500));
      if (output.length > 40) output.shift();
      if (line.includes(' running on ')) readyResolve();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      readyReject(new Error(`worker ${child.pid} exited (${code ?? signal}) before it was ready:\n${output.join('\n')}`));
      res({ code, signal });
    }),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, pid: child.pid as number, output, exited, ready };
}

/** Throws, with its last output, when one of these workers has exited. */
export function assertRunning(workers: readonly WorkerProcess[]): void {
  for (const w of workers) {
    if (w.child.exitCode !== null || w.child.signalCode !== null) throw new Error(`worker ${w.pid} exited (${w.child.exitCode ?? w.child.signalCode}):\n${w.output.join('\n')}`);
  }
}

/** Stops a worker with SIGTERM (graceful: drains, gives back its leases); SIGKILL after `graceMs`. */
export async function stopWorker(w: WorkerProcess, graceMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), graceMs);
  try {
    return await w.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** What the verifying receiver saw. */
export interface VerifyingReceiver {
  url(path: string): string;
  /** Requests per `<path> <event id>`, in arrival order, with their webhook-id. */
  byPair: Map<string, string[]>;
  /** Every request. */
  total(): number;
  /** Requests whose signature did not verify, or whose webhook-id was not the body's id (described). */
  bad: string[];
  /** Holds every answer from now on (requests are still received and counted). */
  pause(): void;
  /** Answers the held requests whose connection is still open, and answers at once again. */
  resume(): void;
  /** Requests held unanswered. */
  held(): number;
  close(): Promise<void>;
}

/**
 * A receiver on 127.0.0.1 port 0 answering 200 at once (or, while paused, on resume). Each path has its endpoint's secret;
 * every request is verified with the standardwebhooks library (independent of ehrsync's signer).
 */
export async function startVerifyingReceiver(t: Pick<TestContext, 'after'>, secrets: Record<string, string>): Promise<VerifyingReceiver> {
  const verifiers = new Map(Object.entries(secrets).map(([path, secret]) => [path, new Webhook(secret)]));
  const byPair = new Map<string, string[]>();
  const bad: string[] = [];
  let total = 0;
  let paused = false;
  const held: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      total++;
      const path = req.url ?? '/';
      const body = Buffer.concat(chunks).toString('utf8');
      const webhookId = String(req.headers['webhook-id']);
      let eventId = '?';
      try {
        const verifier = verifiers.get(path);
        if (!verifier) throw new Error(`no endpoint at ${path}`);
        eventId = (verifier.verify(body, req.headers as Record<string, string>) as { id: string }).id;
        if (eventId !== webhookId) bad.push(`${path}: webhook-id ${webhookId} is not the event id ${eventId}`);
      } catch (e) {
        bad.push(`${path} ${webhookId}: ${(e as Error).message}`);
      }
      const key = `${path} ${eventId}`;
      const list = byPair.get(key) ?? [];
      list.push(webhookId);
      byPair.set(key, list);
      if (paused) held.push(res);
      else res.writeHead(200).end('ok');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((r) => {
      for (const res of held.splice(0)) res.destroy();
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
    return closed;
  };
  t.after(close);
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    byPair,
    total: () => total,
    bad,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(200).end('ok');
    },
    held: () => held.length,
    close,
  };
}

/** A TCP proxy to a PostgreSQL server that can simulate the server restarting. */
export interface PgProxy {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /**
   * A restart as clients see it: stop listening, destroy every proxied connection (both sides),
   * refuse new connections (ECONNREFUSED) for `downMs`, then listen again on the same port.
   */
  restart(downMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 port 0 forwarding to `target` (host:port). */
export async function startPgProxy(t: Pick<TestContext, 'after'>, target: { host: string; port: number }): Promise<PgProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const onConnection = (client: Socket): void => {
    accepted++;
    const server = connect(target.port, target.host);
    track(client);
    track(server);
    client.pipe(server);
    server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  };
  let listener: NetServer = createNetServer(onConnection);
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as AddressInfo).port;
  const closeListener = (l: NetServer): Promise<void> => new Promise<void>((r) => l.close(() => r()));
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const l = listener;
    const done = l.listening ? closeListener(l) : Promise.resolve();
    for (const s of sockets) s.destroy();
    await done;
  };
  t.after(close);
  return {
    port,
    accepted: () => accepted,
    async restart(downMs: number) {
      const done = closeListener(listener);
      for (const s of sockets) s.destroy();
      await done;
      await sleep(downMs);
      if (closed) return;
      listener = createNetServer(onConnection);
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(port, '127.0.0.1', () => resolve());
      });
    },
    close,
  };
}

/** What `seedFaultWorld` made: a fresh schema with one account, connection and endpoints, and events committed. */
export interface FaultWorld {
  /** The schema's URL (`?schema=`) and name. */
  url: string;
  schema: string;
  /** The encryption key the workers must be given (endpoint secrets are stored encrypted with it). */
  key: string;
  rx: VerifyingReceiver;
  store: Store;
  connectionId: string;
  /** Endpoint id → receiver path. */
  endpointPaths: Map<string, string>;
  /** The committed events' ids, in order (ordering keys `k0`, `k1`, ...). */
  eventIds: string[];
  seedMs: number;
}

/**
 * A fresh PostgreSQL schema seeded for a fault test: a verifying receiver with one `standard`
 * endpoint per path (cap `maxConcurrency`), and `events` events committed 2,000 per sync.
 */
export async function seedFaultWorld(t: TestContext, o: { name: string; paths: readonly string[]; maxConcurrency: number; events: number }): Promise<FaultWorld> {
  const url = await freshSchemaUrl(t);
  const schema = new URL(url).searchParams.get('schema') as string;
  const key = SecretBox.generateKey();
  const box = new SecretBox(key);
  const secrets = Object.fromEntries(o.paths.map((p) => [p, newSigningSecret()]));
  const rx = await startVerifyingReceiver(t, secrets);
  const seedStart = Date.now();
  const store = await openStore(url);
  t.after(() => store.close());
  const now = Date.now();
  const account = await store.createAccount({ name: o.name, clientId: `ci_${schema}`, clientSecretHash: 'h', now });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_1', now });
  const endpointPaths = new Map<string, string>();
  for (const path of o.paths) {
    const ep = await store.createEndpoint({ accountId: account.id, url: rx.url(path), secret: box.encrypt(secrets[path] as string), signatureScheme: 'standard', maxConcurrency: o.maxConcurrency, now });
    endpointPaths.set(ep.id, path);
  }
  const eventIds: string[] = [];
  for (let i = 0; i < o.events; i += 2000) {
    const keys = Array.from({ length: Math.min(2000, o.events - i) }, (_, j) => `k${i + j}`);
    eventIds.push(...(await emitEvents(store, connection.id, keys, Date.now())));
  }
  return { url, schema, key, rx, store, connectionId: connection.id, endpointPaths, eventIds, seedMs: Date.now() - seedStart };
}
