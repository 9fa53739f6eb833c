/**
 * Webhook receivers for delivery tests, on 127.0.0.1 port 0: each path behaves one way (ok, 500,
 * 429 with or without Retry-After, 410, 302, garbage body, garbage HTTP, reset, hang, held until
 * released). Verification is done by the tests with independent code, not ehrsync's signing.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

/** One request as received. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The status answered (null when the connection was cut or never answered). */
  status: number | null;
  /**
   * Requests of the same path prefix open with this one, this one included: counted just after it
   * arrived (two turns of the event loop later, so a connection the client closed just before it
   * sent this request is no longer counted).
   */
  openWith: number;
}

/** A receiver and what it saw. */
export interface TestReceiver {
  url(path: string): string;
  received: Received[];
  /** Paths answering 200 from now on, whatever they did before. */
  heal(...paths: string[]): void;
  /** Answers every held request (path `/held...`) with 200. */
  release(): void;
  /** Requests currently held. */
  held(): number;
  /** Most requests in flight at once per path prefix. */
  maxConcurrent: Map<string, number>;
  close(): Promise<void>;
}

/** A receiver whose behaviour is chosen by the first path segment. */
export async function startReceiver(t: Pick<TestContext, 'after'>): Promise<TestReceiver> {
  const received: Received[] = [];
  const healed = new Set<string>();
  const heldQueue: ServerResponse[] = [];
  const current = new Map<string, number>();
  const maxConcurrent = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const mode = path.split('/')[1] ?? '';
      const rec: Received = { path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: null, openWith: 1 };
      received.push(rec);
      current.set(mode, (current.get(mode) ?? 0) + 1);
      // A close is reported in the loop's close phase, after the poll phase that read this request.
      setImmediate(() => setImmediate(() => (rec.openWith = current.get(mode) ?? 1)));
      maxConcurrent.set(mode, Math.max(maxConcurrent.get(mode) ?? 0, current.get(mode) ?? 0));
      res.on('close', () => current.set(mode, (current.get(mode) ?? 1) - 1));
      const answer = (status: number, headers: Record<string, string> = {}, body = 'ok'): void => {
        rec.status = status;
        res.writeHead(status, headers).end(body);
      };
      if (healed.has(`/${mode}`)) return answer(200);
      switch (mode) {
        case 'ok':
          return answer(200);
        case 'slowok':
          return void setTimeout(() => answer(200), 20);
        case '500':
          return answer(500, {}, 'boom');
        case '429':
          return answer(429);
        case '429ra':
          return answer(429, { 'retry-after': '60' });
        case '410':
          return answer(410);
        case '302':
          return answer(302, { location: 'http://127.0.0.1:1/elsewhere' });
        case '400':
          return answer(400, {}, 'bad');
        case 'garbage-body':
          rec.status = 200;
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          return void res.end(Buffer.concat([Buffer.from([0, 0xff, 0xfe, 0x00, 0x41]), Buffer.alloc(5000, 0x7a)]));
        case 'garbage-http':
          res.socket?.end('HTTP/1.1 OK maybe\r\nwhat: \u0000\r\n\r\n');
          return;
        case 'reset':
          res.socket?.resetAndDestroy();
          return;
        case 'hang':
          return; // never answers
        case 'held':
          heldQueue.push(res);
          rec.status = 200;
          return;
        default:
          return answer(404);
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const r of heldQueue.splice(0)) r.destroy();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  t.after(close);
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    heal: (...paths) => paths.forEach((p) => healed.add(p)),
    release: () => {
      for (const r of heldQueue.splice(0)) r.writeHead(200).end('ok');
    },
    held: () => heldQueue.length,
    maxConcurrent,
    close,
  };
}

/** A TCP server that accepts connections and never answers (nor closes them). */
export async function startSilentServer(t: Pick<TestContext, 'after'>): Promise<{ url: string }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/never` };
}
