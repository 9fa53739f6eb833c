/**
 * The MLLP server on real sockets (127.0.0.1, port 0): two independent senders (node-hl7-client,
 * and Debian's `mllp_send` when installed), then what the network can do to it — split and
 * coalesced frames, oversized frames, unfinished frames, slow senders, garbage, refused sources,
 * TLS, failing handlers — and its ordering, parallelism, backpressure and shutdown. Timeouts are
 * injected small; tests wait for events (a close, an answer, a log line), never assert a duration.
 * Every test also checks that no log line carries message content.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Client, Message } from 'node-hl7-client';
import { mllpSend, openMllpConnection } from '../../src/connectors/hl7v2/mllp-client.js';
import { encodeMllpFrame, MllpError, MllpFramer } from '../../src/connectors/hl7v2/mllp-framer.js';
import { MllpServer } from '../../src/connectors/hl7v2/mllp-server.js';
import type { MllpMessageContext, MllpMessageHandler, MllpServerOptions } from '../../src/connectors/hl7v2/mllp-server.js';
import { ConfigError } from '../../src/domain/errors.js';
import type { Logger } from '../../src/domain/logger.js';
import { tempDir } from '../helpers/temp.js';
import { sleep, untilTrue } from '../helpers/wait.js';

const WAIT_MS = 15_000;
/** Appears in every test message; must never appear in a log line. */
const PATIENT = 'DOE^JANE';

/** An SIU^S12 with control id `ctrl` (MSH-10). */
const hl7 = (ctrl: string) => `MSH|^~\\&|EHR|CLINIC|EHRSYNC|EHRSYNC|20260101120000||SIU^S12|${ctrl}|P|2.5\rSCH|${ctrl}\rPID|1||MRN1||${PATIENT}\r`;

/** MSH-10 of an HL7 message (field 10 counting the separator as MSH-1). */
function controlId(message: string): string {
  const msh = message.split('\r').find((s) => s.startsWith('MSH')) ?? '';
  return msh.split('|')[9] ?? '';
}

/** An ACK for `payload`, built by hand: what the real ACK builder will produce, minimally (bytes: the handler encodes). */
const ackFor = (payload: Buffer | string) => {
  const ctrl = controlId(payload.toString());
  return Buffer.from(`MSH|^~\\&|EHRSYNC|EHRSYNC|EHR|CLINIC|20260101120001||ACK^S12|ACK${ctrl}|P|2.5\rMSA|AA|${ctrl}\r`);
};
/** The control id an ACK acknowledges (MSA-2). */
const acked = (ack: Buffer | string) => (ack.toString().split('\r').find((s) => s.startsWith('MSA|')) ?? '').split('|')[2] ?? '';

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function capturingLogger(): { logger: Logger; lines: LogLine[]; codes: () => unknown[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines, codes: () => lines.map((l) => l.fields.code).filter((c) => c !== undefined) };
}

interface Harness {
  server: MllpServer;
  port: number;
  lines: LogLine[];
  /** Payloads the handler received, in order, as text. */
  received: string[];
  /** Resolves once a log line with `code` was written. */
  logged(code: string): Promise<LogLine>;
}

/** A server on 127.0.0.1:0 whose handler (default: records and ACKs) is wrapped to record payloads; closed after the test, then its log is checked for content. */
async function start(t: TestContext, options: Partial<MllpServerOptions> = {}): Promise<Harness> {
  const { logger, lines } = capturingLogger();
  const received: string[] = [];
  const inner: MllpMessageHandler = options.onMessage ?? (async (payload) => ackFor(payload));
  const server = new MllpServer({
    logger,
    idleTimeoutMs: 30_000,
    frameTimeoutMs: 10_000,
    ...options,
    onMessage: (payload, ctx) => {
      received.push(payload.toString());
      return inner(payload, ctx);
    },
  });
  const { port } = await server.listen();
  t.after(async () => {
    await server.close();
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(PATIENT) && !text.includes('MSH|'), 'no log line carries message content');
  });
  const logged = async (code: string) => {
    let found: LogLine | undefined;
    await untilTrue(`a log line with code ${code}`, () => (found = lines.find((l) => l.fields.code === code)) !== undefined, WAIT_MS, 5);
    return found as LogLine;
  };
  return { server, port, lines, received, logged };
}

/** A raw TCP sender that collects the framed answers it gets. */
async function rawClient(t: TestContext, port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  // The server closing on us mid-write (EPIPE, ECONNRESET) is what several tests provoke.
  socket.on('error', () => {});
  // Bounded, so a connection the server wrongly keeps open fails the test instead of hanging it.
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for the server to close the connection')), WAIT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  closed.catch(() => {}); // awaited by the tests that expect a close; the others must not see an unhandled rejection
  t.after(() => void socket.destroy());
  await once(socket, 'connect');
  const framer = new MllpFramer();
  const answers: string[] = [];
  socket.on('data', (chunk: Buffer) => answers.push(...framer.push(chunk).frames.map(String)));
  return {
    socket,
    answers,
    closed,
    write: (data: Buffer | string) => new Promise<void>((resolve) => socket.write(data, () => resolve())),
    untilAnswers: (n: number) => untilTrue(`${n} answers`, () => answers.length >= n, WAIT_MS, 5),
  };
}

/** A gate a handler can wait on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const MLLP_SEND = '/usr/bin/mllp_send';
const noMllpSend = existsSync(MLLP_SEND) ? undefined : `${MLLP_SEND} is not installed (Debian: apt-get install -y python3-hl7); the mllp_send test is skipped`;
const noOpenssl = spawnSync('openssl', ['version']).error ? 'openssl is not installed; the TLS test is skipped' : undefined;

/** A self-signed certificate for CN=localhost in a temporary directory. */
function selfSigned(t: TestContext): { certFile: string; keyFile: string } {
  const dir = tempDir(t, 'ehrsync-mllp-tls-');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  assert.equal(r.status, 0, 'openssl generated the certificate');
  return { certFile, keyFile };
}

describe('mllp server', () => {
  it('node-hl7-client (an independent sender) sends messages and gets our ACKs, in order', async (t) => {
    const h = await start(t);
    const acks: string[] = [];
    const client = new Client({ host: '127.0.0.1' });
    const conn = client.createConnection({ port: h.port, waitAck: true }, (res) => void acks.push(res.getMessage().get('MSA.2').toString()));
    t.after(async () => {
      await conn.close();
      client.closeAll();
    });
    await once(conn, 'connect');
    const ids = ['HL7C-1', 'HL7C-2', 'HL7C-3', 'HL7C-4'];
    for (const [i, id] of ids.entries()) {
      const message = new Message({ messageHeader: { msh_9_1: 'SIU', msh_9_2: 'S12', msh_10: id, msh_11_1: 'P' } as never });
      message.set('PID.5', PATIENT);
      await conn.sendMessage(message);
      // node-hl7-client reads one answer per socket read: send the next once this one is in.
      await untilTrue(`ACK ${i + 1}`, () => acks.length > i, WAIT_MS, 5);
    }
    assert.deepEqual(acks, ids);
    assert.deepEqual(h.received.map(controlId), ids);
  });

  it('Debian mllp_send (a non-JS sender) sends a file of messages and prints our ACKs', { skip: noMllpSend ?? false }, async (t) => {
    const h = await start(t);
    const file = join(tempDir(t, 'ehrsync-mllp-send-'), 'messages.hl7');
    const ids = ['PY-1', 'PY-2', 'PY-3'];
    // mllp_send splits its input on the end block and frames each message itself.
    writeFileSync(file, Buffer.concat(ids.map((id) => encodeMllpFrame(hl7(id)))));
    // Asynchronously: the server runs in this process and must keep answering meanwhile.
    const stdout = await new Promise<Buffer>((resolve, reject) =>
      execFile(MLLP_SEND, ['--port', String(h.port), '--file', file, '127.0.0.1'], { encoding: 'buffer', timeout: WAIT_MS }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    // It prints each framed answer followed by a line feed, which the framer skips between frames.
    const { frames, error } = new MllpFramer().push(stdout);
    assert.equal(error, null);
    assert.deepEqual(frames.map(acked), ids);
    assert.deepEqual(h.received.map(controlId), ids);
  });

  it('handles a frame split into one-byte writes', async (t) => {
    const h = await start(t);
    const c = await rawClient(t, h.port);
    for (const id of ['SPLIT-1', 'SPLIT-2']) {
      for (const byte of encodeMllpFrame(hl7(id))) {
        await c.write(Buffer.from([byte]));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    await c.untilAnswers(2);
    assert.deepEqual(c.answers.map(acked), ['SPLIT-1', 'SPLIT-2']);
  });

  it('handles two coalesced frames in one write: both, in order', async (t) => {
    const h = await start(t);
    const c = await rawClient(t, h.port);
    await c.write(Buffer.concat([encodeMllpFrame(hl7('PAIR-1')), encodeMllpFrame(hl7('PAIR-2'))]));
    await c.untilAnswers(2);
    assert.deepEqual(c.answers.map(acked), ['PAIR-1', 'PAIR-2']);
    assert.deepEqual(h.received.map(controlId), ['PAIR-1', 'PAIR-2']);
  });

  it('handles 1,000 coalesced frames in one write: all, one at a time, ACKs in order', async (t) => {
    let active = 0;
    let maxActive = 0;
    const h = await start(t, {
      onMessage: async (payload) => {
        maxActive = Math.max(maxActive, ++active);
        await new Promise<void>((resolve) => setImmediate(resolve));
        active--;
        return ackFor(payload);
      },
    });
    const c = await rawClient(t, h.port);
    const ids = Array.from({ length: 1000 }, (_, i) => `BULK-${i}`);
    await c.write(Buffer.concat(ids.map((id) => encodeMllpFrame(hl7(id)))));
    await c.untilAnswers(1000);
    assert.deepEqual(c.answers.map(acked), ids);
    assert.deepEqual(h.received.map(controlId), ids);
    assert.equal(maxActive, 1, 'one message of a connection at a time');
    assert.equal(h.server.stats().acknowledged, 1000);
  });

  it('closes a connection sending a 5 MB frame with frame_too_large, and keeps serving others', async (t) => {
    const h = await start(t);
    const c = await rawClient(t, h.port);
    const huge = Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(5 * 1024 * 1024, 'A'), Buffer.from([0x1c, 0x0d])]);
    c.socket.write(huge);
    await c.closed;
    const line = await h.logged('frame_too_large');
    assert.deepEqual(Object.keys(line.fields).sort(), ['code', 'connectionId', 'remoteAddress']);
    assert.deepEqual([c.answers, h.received], [[], []]);
    assert.equal(acked(await mllpSend('127.0.0.1', h.port, hl7('AFTER-HUGE'))), 'AFTER-HUGE');
  });

  it('closes a connection whose frame never ends (frame_timeout), after answering the complete frames before it', async (t) => {
    const h = await start(t, { frameTimeoutMs: 100 });
    const c = await rawClient(t, h.port);
    await c.write(Buffer.concat([encodeMllpFrame(hl7('BEFORE')), Buffer.from(`\x0b${hl7('NO-END')}`)]));
    await c.closed;
    await h.logged('frame_timeout');
    assert.deepEqual(c.answers.map(acked), ['BEFORE']);
    assert.deepEqual(h.received.map(controlId), ['BEFORE']);
  });

  it('closes a slowloris sender (one byte per interval) with frame_timeout', async (t) => {
    const h = await start(t, { frameTimeoutMs: 150 });
    const c = await rawClient(t, h.port);
    const frame = encodeMllpFrame(hl7('SLOW'));
    let sent = 0;
    let open = true;
    void c.closed.then(() => (open = false));
    // Each byte comes well within any per-read timeout; only the frame's total time can stop it.
    while (open && sent < frame.length) {
      c.socket.write(frame.subarray(sent, ++sent));
      await sleep(10);
    }
    await c.closed;
    await h.logged('frame_timeout');
    assert.ok(sent < frame.length, 'closed before the frame was finished');
    assert.deepEqual(h.received, []);
  });

  it('closes a connection that sends nothing (idle_timeout), and one idle after its last ACK', async (t) => {
    const h = await start(t, { idleTimeoutMs: 100 });
    const silent = await rawClient(t, h.port);
    await silent.closed;
    assert.deepEqual(h.lines.filter((l) => l.fields.code === 'idle_timeout').map((l) => l.level), ['info']);
    // The idle timer starts at accept: a short one could fire before the frame arrives after a VM pause.
    const h2 = await start(t, { idleTimeoutMs: 2_000 });
    const c = await rawClient(t, h2.port);
    await c.write(encodeMllpFrame(hl7('THEN-IDLE')));
    await c.closed;
    assert.deepEqual(c.answers.map(acked), ['THEN-IDLE']);
    assert.deepEqual(h2.lines.filter((l) => l.fields.code === 'idle_timeout').map((l) => l.level), ['info']);
  });

  it('closes a connection sending binary garbage with malformed_framing, and keeps serving others', async (t) => {
    const h = await start(t);
    for (const [garbage, reason] of [
      [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0b, 0x1c]), 'data_outside_frame'],
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'data_outside_frame'],
      [Buffer.from([0x0b, 0x41, 0x0b, 0x42]), 'start_in_frame'],
      [Buffer.from([0x0b, 0x41, 0x1c, 0x41]), 'end_without_cr'],
    ] as const) {
      const c = await rawClient(t, h.port);
      await c.write(garbage);
      await c.closed;
      assert.deepEqual(c.answers, []);
      await untilTrue(`a malformed_framing line with reason ${reason}`, () => h.lines.some((l) => l.fields.code === 'malformed_framing' && l.fields.reason === reason), WAIT_MS, 5);
    }
    assert.deepEqual(h.received, []);
    assert.equal(acked(await mllpSend('127.0.0.1', h.port, hl7('AFTER-GARBAGE'))), 'AFTER-GARBAGE');
  });

  it('answers what a sender sent before half-closing, then closes', async (t) => {
    const h = await start(t);
    const c = await rawClient(t, h.port);
    c.socket.end(Buffer.concat([encodeMllpFrame(hl7('HALF-1')), encodeMllpFrame(hl7('HALF-2'))]));
    await c.closed;
    assert.deepEqual(c.answers.map(acked), ['HALF-1', 'HALF-2']);
  });

  it('refuses a source address not in allowFrom at once, logging the address only', async (t) => {
    const h = await start(t, { allowFrom: ['10.9.9.9'] });
    const c = await rawClient(t, h.port);
    void c.write(encodeMllpFrame(hl7('REFUSED')));
    await c.closed;
    const line = await h.logged('source_not_allowed');
    assert.deepEqual(line.fields, { remoteAddress: '127.0.0.1', code: 'source_not_allowed' });
    assert.deepEqual([c.answers, h.received], [[], []]);

    const allowed = await start(t, { allowFrom: ['10.9.9.9', '127.0.0.0/8'] });
    assert.equal(acked(await mllpSend('127.0.0.1', allowed.port, hl7('CIDR-OK'))), 'CIDR-OK');
  });

  it('refuses connections beyond maxConnections', async (t) => {
    const h = await start(t, { maxConnections: 1 });
    const first = await openMllpConnection('127.0.0.1', h.port);
    t.after(() => first.close());
    assert.equal(acked(await first.send(hl7('FIRST'))), 'FIRST');
    const second = await rawClient(t, h.port);
    await second.closed;
    await h.logged('too_many_connections');
    assert.equal(acked(await first.send(hl7('FIRST-AGAIN'))), 'FIRST-AGAIN');
  });

  it('counts a connection against maxConnections until its handler settled, not just its socket closed', async (t) => {
    // The repro: a handler that never returns, and a sender that connects, sends and resets, 20 times.
    const signals: AbortSignal[] = [];
    const h = await start(t, {
      maxConnections: 1,
      closeTimeoutMs: 0,
      onMessage: (_payload, ctx) => {
        signals.push(ctx.signal);
        return new Promise<never>(() => {});
      },
    });
    for (let i = 0; i < 20; i++) {
      const c = await rawClient(t, h.port);
      void c.write(encodeMllpFrame(hl7(`RESET-${i}`)));
      // Accepted: its handler starts. Refused: the server closes it. Either way, then reset.
      await Promise.race([untilTrue(`handler ${i + 1} started`, () => h.received.length > i, WAIT_MS, 5), c.closed]);
      c.socket.resetAndDestroy();
      await c.closed;
    }
    assert.equal(h.received.length, 1, 'one handler running, not 20');
    await untilTrue('the first handler was told its connection closed', () => signals[0]?.aborted === true, WAIT_MS, 5);
    assert.equal(signals.length, 1);
    assert.equal(h.server.stats().connections, 1, 'the closed connection still counts while its handler runs');
    await untilTrue('19 refusals counted', () => h.server.stats().refusedConnections === 19, WAIT_MS, 5);
    const refusals = h.lines.filter((l) => l.fields.code === 'too_many_connections');
    assert.deepEqual(
      refusals.map((l) => [l.level, l.fields]),
      [['warn', { remoteAddress: '127.0.0.1', code: 'too_many_connections', maxConnections: 1 }]],
      'one warn line per address per minute, the rest counted',
    );
  });

  it('a handler past handlerTimeoutMs: no ACK, signal aborted, connection closed (handler_timeout), slot freed', async (t) => {
    const signals: AbortSignal[] = [];
    const h = await start(t, {
      maxConnections: 1,
      handlerTimeoutMs: 100,
      onMessage: async (payload, ctx) => {
        if (controlId(payload.toString()) !== 'HANG') return ackFor(payload);
        signals.push(ctx.signal);
        return new Promise<never>(() => {});
      },
    });
    const c = await rawClient(t, h.port);
    await c.write(encodeMllpFrame(hl7('HANG')));
    await c.closed;
    const line = await h.logged('handler_timeout');
    assert.deepEqual(Object.keys(line.fields).sort(), ['code', 'connectionId', 'remoteAddress']);
    assert.equal(line.level, 'warn');
    assert.deepEqual(c.answers, []);
    assert.equal(signals[0]?.aborted, true);
    await untilTrue('the slot is free', () => h.server.stats().connections === 0, WAIT_MS, 5);
    assert.equal(acked(await mllpSend('127.0.0.1', h.port, hl7('AFTER-HANG'))), 'AFTER-HANG');
  });

  it('a reconnect from the same address does not overtake the handler still running on its old connection', async (t) => {
    const first = gate();
    const events: string[] = [];
    const h = await start(t, {
      onMessage: async (payload, ctx) => {
        const id = controlId(payload.toString());
        events.push(`start ${id}`);
        if (id === 'RE-1') {
          await first.opened;
          events.push(`end ${id} aborted=${ctx.signal.aborted}`);
        }
        return ackFor(payload);
      },
    });
    const old = await rawClient(t, h.port);
    await old.write(encodeMllpFrame(hl7('RE-1')));
    await untilTrue('RE-1 is being handled', () => events.length === 1, WAIT_MS, 5);
    // The sender gives up on its connection and resends on a new one.
    old.socket.resetAndDestroy();
    await old.closed;
    const again = await rawClient(t, h.port);
    await again.write(encodeMllpFrame(hl7('RE-2')));
    await untilTrue('RE-2 waits in its queue', () => h.server.stats().queuedFrames === 1, WAIT_MS, 5);
    assert.deepEqual(events, ['start RE-1']);
    first.open();
    await again.untilAnswers(1);
    assert.deepEqual(events, ['start RE-1', 'end RE-1 aborted=true', 'start RE-2']);
    assert.deepEqual(again.answers.map(acked), ['RE-2']);
  });

  for (const withTls of [false, true]) {
    it(`close() during listen() ${withTls ? '(TLS, while reading the key files)' : '(plaintext)'}: listen rejects with server_closing, nothing stays bound`, { skip: (withTls && noOpenssl) || false, timeout: WAIT_MS }, async (t) => {
      // A port that was free a moment ago: listen() must not end up bound to it.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const port = (probe.address() as AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const server = new MllpServer({ onMessage: async (p) => ackFor(p), port, ...(withTls ? { tls: selfSigned(t) } : {}) });
      const listening = server.listen();
      listening.catch(() => {});
      await server.close();
      await assert.rejects(listening, (err: unknown) => err instanceof MllpError && err.code === 'server_closing');
      await assert.rejects(mllpSend('127.0.0.1', port, hl7('NOT-LISTENING'), { timeoutMs: 5_000 }), (err: unknown) => err instanceof MllpError && err.code === 'connect_failed');
    });
  }

  it('the client bounds the whole answer, not each chunk of it (ack_timeout on a dribbling receiver)', { timeout: WAIT_MS }, async (t) => {
    const dribbler = createServer((socket) => {
      socket.on('error', () => {});
      socket.write(Buffer.from([0x0b]));
      const timer = setInterval(() => socket.write('A'), 10);
      socket.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => dribbler.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => dribbler.close(() => resolve())));
    const port = (dribbler.address() as AddressInfo).port;
    await assert.rejects(mllpSend('127.0.0.1', port, hl7('DRIBBLE'), { timeoutMs: 200 }), (err: unknown) => err instanceof MllpError && err.code === 'ack_timeout');
  });

  it('serves TLS with a self-signed certificate; a plaintext sender fails the handshake', { skip: noOpenssl ?? false }, async (t) => {
    const files = selfSigned(t);
    const contexts: MllpMessageContext[] = [];
    const h = await start(t, {
      tls: files,
      onMessage: async (payload, ctx) => {
        contexts.push(ctx);
        return ackFor(payload);
      },
    });
    const ca = readFileSync(files.certFile);
    assert.equal(acked(await mllpSend('127.0.0.1', h.port, hl7('TLS-1'), { tls: { ca, servername: 'localhost' } })), 'TLS-1');
    assert.deepEqual([contexts[0]?.tls, contexts[0]?.remoteAddress], [true, '127.0.0.1']);

    // node-hl7-client over TLS too.
    const acks: string[] = [];
    const client = new Client({ host: '127.0.0.1', tls: { ca, servername: 'localhost' } });
    const conn = client.createConnection({ port: h.port, waitAck: true }, (res) => void acks.push(res.getMessage().get('MSA.2').toString()));
    t.after(async () => {
      await conn.close();
      client.closeAll();
    });
    await once(conn, 'connect');
    await conn.sendMessage(new Message({ messageHeader: { msh_9_1: 'ADT', msh_9_2: 'A08', msh_10: 'TLS-2', msh_11_1: 'P' } as never }));
    await untilTrue('the TLS ACK', () => acks.length === 1, WAIT_MS, 5);
    assert.deepEqual(acks, ['TLS-2']);

    const plain = await rawClient(t, h.port);
    await plain.write(encodeMllpFrame(hl7('PLAIN')));
    await plain.closed;
    await h.logged('tls_handshake_failed');
    assert.deepEqual(h.received.map(controlId), ['TLS-1', 'TLS-2']);
  });

  it('a handler that throws: no ACK, the connection is closed, later frames are not handled, others go on', async (t) => {
    const h = await start(t, {
      onMessage: async (payload) => {
        if (controlId(payload.toString()) === 'BOOM') throw Object.assign(new Error(`cannot parse ${payload.toString()}`), { code: 'hl7_parse_error' });
        return ackFor(payload);
      },
    });
    const c = await rawClient(t, h.port);
    await c.write(Buffer.concat(['OK-1', 'BOOM', 'NEVER'].map((id) => encodeMllpFrame(hl7(id)))));
    await c.closed;
    assert.deepEqual(c.answers.map(acked), ['OK-1']);
    assert.deepEqual(h.received.map(controlId), ['OK-1', 'BOOM']);
    const line = await h.logged('handler_failed');
    assert.equal(line.fields.handlerError, 'hl7_parse_error');
    await assert.rejects(mllpSend('127.0.0.1', h.port, hl7('BOOM')), (err: unknown) => err instanceof MllpError && err.code === 'connection_closed');
    assert.equal(acked(await mllpSend('127.0.0.1', h.port, hl7('OK-2'))), 'OK-2');
  });

  it('an ACK that cannot be framed (MLLP control bytes, empty, a string) is not sent; the connection is closed', async (t) => {
    // A string is refused: its charset is the wiring's to choose (encodeText), not UTF-8 by default.
    for (const bad of [Buffer.from('MSA|AA|\x1c'), Buffer.alloc(0), 'MSA|AA|1' as unknown as Buffer]) {
      const h = await start(t, { onMessage: async () => bad });
      await assert.rejects(mllpSend('127.0.0.1', h.port, hl7('BAD-ACK')), (err: unknown) => err instanceof MllpError && err.code === 'connection_closed');
      await h.logged('invalid_ack');
    }
  });

  it('closes a connection that does not read its ACKs (write_timeout)', async (t) => {
    // An ACK larger than the kernel's socket buffers cannot be flushed while the peer reads nothing.
    const hugeAck = Buffer.from(`MSA|AA|${'X'.repeat(24 * 1024 * 1024)}`);
    const h = await start(t, { frameTimeoutMs: 200, onMessage: async () => hugeAck });
    const c = await rawClient(t, h.port);
    c.socket.pause();
    await c.write(encodeMllpFrame(hl7('NOT-READING')));
    await h.logged('write_timeout');
    // A paused socket never sees the end of the stream: read again to observe the close.
    c.socket.resume();
    await c.closed;
  });

  it('handles one connection strictly in order, one at a time, even with a slow handler', async (t) => {
    const slow = gate();
    const events: string[] = [];
    const h = await start(t, {
      onMessage: async (payload) => {
        const id = controlId(payload.toString());
        events.push(`start ${id}`);
        if (id === 'ORD-1') await slow.opened;
        events.push(`end ${id}`);
        return ackFor(payload);
      },
    });
    const c = await rawClient(t, h.port);
    await c.write(Buffer.concat(['ORD-1', 'ORD-2', 'ORD-3'].map((id) => encodeMllpFrame(hl7(id)))));
    await untilTrue('the first handler started', () => events.length === 1, WAIT_MS, 5);
    await untilTrue('the other two wait in the queue', () => h.server.stats().queuedFrames === 2, WAIT_MS, 5);
    assert.deepEqual([events, c.answers], [['start ORD-1'], []]);
    slow.open();
    await c.untilAnswers(3);
    assert.deepEqual(events, ['start ORD-1', 'end ORD-1', 'start ORD-2', 'end ORD-2', 'start ORD-3', 'end ORD-3']);
    assert.deepEqual(c.answers.map(acked), ['ORD-1', 'ORD-2', 'ORD-3']);
  });

  it('handles different connections in parallel', async (t) => {
    const bCalled = gate();
    const h = await start(t, {
      onMessage: async (payload) => {
        const id = controlId(payload.toString());
        // A waits for B's handler: were connections handled one after another, this would never end.
        if (id === 'PAR-A') await bCalled.opened;
        if (id === 'PAR-B') bCalled.open();
        return ackFor(payload);
      },
    });
    const a = await openMllpConnection('127.0.0.1', h.port);
    const b = await openMllpConnection('127.0.0.1', h.port);
    t.after(() => {
      a.close();
      b.close();
    });
    const ackA = a.send(hl7('PAR-A'));
    await untilTrue('A is being handled', () => h.received.length === 1, WAIT_MS, 5);
    const ackB = b.send(hl7('PAR-B'));
    assert.deepEqual((await Promise.all([ackA, ackB])).map(acked), ['PAR-A', 'PAR-B']);
  });

  it('stops reading a connection whose queue is full (backpressure), resumes, and loses nothing', async (t) => {
    const blocked = gate();
    const h = await start(t, {
      maxQueuedFrames: 4,
      onMessage: async (payload) => {
        await blocked.opened;
        return ackFor(payload);
      },
    });
    const c = await rawClient(t, h.port);
    const ids = Array.from({ length: 5000 }, (_, i) => `BP-${i}`);
    const padding = 'Z'.repeat(1000);
    void c.write(Buffer.concat(ids.map((id) => encodeMllpFrame(`${hl7(id)}NTE|${padding}\r`))));
    await untilTrue('the connection is paused', () => h.server.stats().pausedConnections === 1, WAIT_MS, 5);
    // One socket read (64 KiB here) may complete many frames at once; beyond that nothing is read.
    const queued = h.server.stats().queuedFrames;
    assert.ok(queued < 100, `at most one read's worth of frames is queued (${queued})`);
    blocked.open();
    await c.untilAnswers(ids.length);
    assert.deepEqual(c.answers.map(acked), ids);
    assert.equal(h.server.stats().pausedConnections, 0);
  });

  it('close() stops accepting, lets the in-flight handler finish and answer, then closes the connection', async (t) => {
    const inFlight = gate();
    const h = await start(t, {
      onMessage: async (payload) => {
        await inFlight.opened;
        return ackFor(payload);
      },
    });
    const c = await rawClient(t, h.port);
    await c.write(Buffer.concat(['CLOSE-1', 'CLOSE-2'].map((id) => encodeMllpFrame(hl7(id)))));
    await untilTrue('the handler started', () => h.received.length === 1, WAIT_MS, 5);
    const closing = h.server.close();
    await assert.rejects(mllpSend('127.0.0.1', h.port, hl7('TOO-LATE'), { timeoutMs: 5_000 }), (err: unknown) => err instanceof MllpError && err.code === 'connect_failed');
    inFlight.open();
    await closing;
    await c.closed;
    assert.deepEqual(c.answers.map(acked), ['CLOSE-1'], 'the in-flight message was answered; the queued one was not started');
    assert.deepEqual(h.received.map(controlId), ['CLOSE-1']);
    assert.deepEqual(h.server.stats().connections, 0);
  });

  it('close() destroys connections whose handler does not finish within closeTimeoutMs', async (t) => {
    const h = await start(t, { closeTimeoutMs: 50, onMessage: () => new Promise<never>(() => {}) });
    const c = await rawClient(t, h.port);
    await c.write(encodeMllpFrame(hl7('STUCK')));
    await untilTrue('the handler started', () => h.received.length === 1, WAIT_MS, 5);
    await h.server.close();
    await c.closed;
    assert.ok(h.lines.some((l) => l.fields.code === 'server_closing' && l.level === 'warn'));
  });

  it('binds 127.0.0.1 by default and exposes the bound port; refuses invalid options', async (t) => {
    const h = await start(t);
    assert.deepEqual(h.server.address(), { host: '127.0.0.1', port: h.port, family: 'IPv4' });
    assert.ok(h.port > 0);
    const onMessage = async () => Buffer.from('x');
    for (const bad of [{ allowFrom: [] }, { allowFrom: ['not-an-ip'] }, { allowFrom: ['10.0.0.0/33'] }, { port: -1 }, { maxBytes: 0 }, { host: '' }, { frameTimeoutMs: 1.5 }]) {
      assert.throws(() => new MllpServer({ onMessage, ...bad }), ConfigError, JSON.stringify(bad));
    }
    assert.throws(() => new MllpServer({ onMessage }).address(), ConfigError);
    await assert.rejects(new MllpServer({ onMessage, tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } }).listen(), ConfigError);
    await assert.rejects(new MllpServer({ onMessage, port: h.port }).listen(), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
  });
});
