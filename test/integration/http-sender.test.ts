/** The HTTP sender against real local servers: what a response's body, length and shape do to the result and to the connection. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { HttpSender } from '../../src/delivery/http-sender.js';

/** A server on 127.0.0.1:0 answering with `handle`, counting the connections it accepted. */
async function server(t: TestContext, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const s = createServer((req, res) => {
    req.resume();
    req.on('end', () => handle(req, res));
  });
  s.on('connection', () => connections++);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => s.close(() => r())).then(() => s.closeAllConnections()));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, connections: () => connections };
}

function sender(t: TestContext): HttpSender {
  const s = new HttpSender({ policy: { allowInsecure: true, allowHosts: [], allowPrivate: true } });
  t.after(() => s.close());
  return s;
}

const send = (s: HttpSender, url: string, timeoutMs = 10_000) => s.send({ url, headers: { 'content-type': 'application/json' }, body: '{}', timeoutMs });

describe('http sender', () => {
  // A sender that waited for the end of the body would hang here past the test's timeout (the
  // attempt's own timeout is far longer): that hang is the failure.
  it('reports the answer once the excerpt is in, while the rest of a stalled body is still coming', { timeout: 20_000 }, async (t) => {
    let finishBody: (() => void) | null = null;
    const rx = await server(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('x'.repeat(2048));
      finishBody = () => res.end('done');
    });
    const result = await send(sender(t), rx.url, 120_000);
    assert.ok(finishBody !== null, 'the server is still holding the body open');
    assert.deepEqual([result.statusCode, result.errorClass, result.bodyExcerpt?.length], [200, null, 1024]);
    (finishBody as () => void)();
  });

  it('reads bodies to their end to reuse the connection, and drops it past 64 KiB (read or announced)', async (t) => {
    for (const [size, announced, reused] of [
      [30 * 1024, true, true],
      [30 * 1024, false, true],
      [70 * 1024, false, false],
      [70 * 1024, true, false],
    ] as const) {
      const rx = await server(t, (_req, res) => {
        const body = Buffer.alloc(size, 'y');
        // Announced: content-length; not announced: chunked, the size is only known by reading.
        res.writeHead(200, announced ? { 'content-length': String(body.length) } : {});
        res.end(body);
      });
      const s = sender(t);
      for (let i = 0; i < 3; i++) {
        const r = await send(s, rx.url);
        assert.deepEqual([r.statusCode, r.bodyExcerpt?.length], [200, 1024]);
        // Let a background drain finish before the next attempt picks a connection.
        await new Promise((res) => setTimeout(res, 50));
      }
      const what = `${size} bytes${announced ? ' with content-length' : ''}: connections for 3 attempts`;
      if (reused) assert.equal(rx.connections(), 1, what);
      else assert.ok(rx.connections() >= 3, `${what}: ${rx.connections()}, expected a new one per attempt`);
    }
  });

  it('skips informational 1xx answers and reports the final one', async (t) => {
    const rx = await server(t, (_req, res) => {
      res.writeProcessing();
      res.writeHead(429, { 'retry-after': '7' }).end('slow down');
    });
    const r = await send(sender(t), rx.url);
    assert.deepEqual([r.statusCode, r.retryAfter, r.bodyExcerpt], [429, '7', 'slow down']);
  });

  it('a connection reset mid-body keeps the status that arrived; before the status it is a connection_reset', async (t) => {
    const mid = await server(t, (_req, res) => {
      res.writeHead(503, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 10);
    });
    const early = await server(t, (req) => req.socket.destroy());
    const s = sender(t);
    const a = await send(s, mid.url);
    assert.deepEqual([a.statusCode, a.errorClass, a.bodyExcerpt], [503, null, 'partial']);
    const b = await send(s, early.url);
    assert.deepEqual([b.statusCode, b.errorClass], [null, 'connection_reset']);
  });

  it('an answer that never comes is a timeout', async (t) => {
    const silent = await server(t, () => {});
    const s = sender(t);
    const r = await send(s, silent.url, 300);
    assert.deepEqual([r.statusCode, r.errorClass], [null, 'timeout']);
  });
});
