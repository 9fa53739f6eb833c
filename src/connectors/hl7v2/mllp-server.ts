/**
 * @module connectors/hl7v2/mllp-server — the HL7v2 push connector's network edge: an MLLP
 * listener (TCP, or TLS) that hands each framed message to a handler and writes back the ACK it
 * returns, framed.
 *
 * Guarantees:
 * - Per connection, messages are handled strictly in arrival order, one at a time: the next
 *   message's handler starts only after the previous ACK was written. HL7 senders rely on it (an
 *   S14 must not overtake the S12 it modifies). Different connections run in parallel.
 * - Nothing a peer sends can crash the process: framing errors, oversized frames, slow senders,
 *   handshake failures and handler failures close that one connection, with one log line of ids and
 *   a code (catalogue in mllp-framer.ts). Message content is never logged.
 * - A message whose handler throws gets no ACK and its connection is closed: the sender resends it
 *   (MLLP senders retry unacknowledged messages), so nothing is acknowledged that was not handled.
 *   Frames queued behind it are dropped unacknowledged for the same reason.
 * - After a framing error or a frame timeout, reading stops at once; the complete frames received
 *   before it are still handled and answered (their sender waits for them), then the connection closes.
 * - Memory per connection is bounded: one frame of at most `maxBytes`, and reading pauses while
 *   more than `maxQueuedFrames` frames wait for the handler (TCP flow control then slows the sender).
 *
 * Security: binds 127.0.0.1 unless a host is configured; `allowFrom` refuses other source addresses
 * before any byte is read or any TLS work is done; TLS (certFile/keyFile) is wrapped per accepted
 * socket, after those checks.
 */
import { readFile } from 'node:fs/promises';
import { BlockList, createServer, isIP } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { ConfigError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import type { Logger } from '../../domain/logger.js';
import { silentLogger } from '../../domain/logger.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeMllpFrame, MllpFramer } from './mllp-framer.js';
import type { MllpErrorCode } from './mllp-framer.js';

/** What the handler learns about the connection a message came on (ids only, for logs and routing). */
export interface MllpMessageContext {
  /** Random id of the connection, unique per server run; in every log line about it. */
  connectionId: string;
  /** The peer's IP address (IPv4-mapped IPv6 addresses shown as IPv4). */
  remoteAddress: string;
  /** True when the connection is TLS. */
  tls: boolean;
}

/**
 * Handles one message (the frame's payload, framing removed) and returns the ACK to send back,
 * unframed (a string is sent as UTF-8). Throwing means "not handled": no ACK, connection closed.
 */
export type MllpMessageHandler = (payload: Buffer, ctx: MllpMessageContext) => Promise<Buffer | string>;

/** Options of an {@link MllpServer}. */
export interface MllpServerOptions {
  /** Called for each message, in order per connection. */
  onMessage: MllpMessageHandler;
  /** Address to bind. Default `127.0.0.1`; all interfaces only when set explicitly (`0.0.0.0`, `::`). */
  host?: string;
  /** Port to bind; 0 (the default) picks a free one, see {@link MllpServer.address}. */
  port?: number;
  /** Serve TLS with this certificate chain and private key (PEM files, read by `listen()`). */
  tls?: { certFile: string; keyFile: string };
  /** Source addresses allowed to connect: IPs or CIDR ranges (`10.0.0.0/8`). Omitted: any source. */
  allowFrom?: string[];
  /** Largest message payload, in bytes. Default 1 MiB. */
  maxBytes?: number;
  /** Close a connection on which no message starts for this long. Default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Close a connection whose frame (or TLS handshake) started but did not finish within this time,
   * or whose ACK the peer does not read within it. Default 10 s.
   */
  frameTimeoutMs?: number;
  /** Most connections open at once; more are closed at once. Default 100. */
  maxConnections?: number;
  /** Stop reading from a connection while more than this many frames wait for the handler. Default 4. */
  maxQueuedFrames?: number;
  /** How long `close()` waits for in-flight handlers before destroying their sockets. Default 10 s. */
  closeTimeoutMs?: number;
  /** Where to log (ids, addresses and codes only). Default: silent. */
  logger?: Logger;
}

/** The address the server is bound to. */
export interface MllpAddress {
  host: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** Counters for monitoring and tests. */
export interface MllpServerStats {
  /** Connections open now (TLS handshakes in progress included). */
  connections: number;
  /** Connections whose reading is paused because their queue is full. */
  pausedConnections: number;
  /** Complete frames waiting for their handler, over all connections (the one being handled excluded). */
  queuedFrames: number;
  /** Messages acknowledged since start. */
  acknowledged: number;
}

interface Settings {
  host: string;
  port: number;
  maxBytes: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
  maxConnections: number;
  maxQueuedFrames: number;
  closeTimeoutMs: number;
}

/** Why a connection ended: a catalogue code, or the peer closing normally. */
type CloseCode = MllpErrorCode | 'peer_closed';

/** An MLLP listener. `listen()` binds, `close()` drains and stops. One instance listens once. */
export class MllpServer {
  private readonly settings: Settings;
  private readonly onMessage: MllpMessageHandler;
  private readonly logger: Logger;
  private readonly allow: BlockList | null;
  private readonly tlsFiles: { certFile: string; keyFile: string } | null;
  /** Connections until their socket closed and their handler returned (what close() waits for). */
  private readonly connections = new Set<MllpConnection>();
  /** Sockets open now: what maxConnections limits (a closed socket frees its slot even while its handler still runs). */
  private openSockets = 0;
  private server: Server | null = null;
  private secureContext: SecureContext | null = null;
  private bound: MllpAddress | null = null;
  private closing: Promise<void> | null = null;
  private acknowledged = 0;

  constructor(options: MllpServerOptions) {
    if (typeof options.onMessage !== 'function') throw new ConfigError('onMessage: a handler function is required.');
    const host = options.host ?? '127.0.0.1';
    if (host.trim() === '') throw new ConfigError('host: must not be empty; omit it to bind 127.0.0.1.');
    this.settings = {
      host,
      port: integer('port', options.port ?? 0, 0, 65535),
      maxBytes: integer('maxBytes', options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES, 1, 2 ** 31 - 1),
      idleTimeoutMs: integer('idleTimeoutMs', options.idleTimeoutMs ?? 60_000, 1, 2 ** 31 - 1),
      frameTimeoutMs: integer('frameTimeoutMs', options.frameTimeoutMs ?? 10_000, 1, 2 ** 31 - 1),
      maxConnections: integer('maxConnections', options.maxConnections ?? 100, 1, 1_000_000),
      maxQueuedFrames: integer('maxQueuedFrames', options.maxQueuedFrames ?? 4, 1, 1_000_000),
      closeTimeoutMs: integer('closeTimeoutMs', options.closeTimeoutMs ?? 10_000, 0, 2 ** 31 - 1),
    };
    this.onMessage = options.onMessage;
    this.logger = options.logger ?? silentLogger;
    this.allow = options.allowFrom === undefined ? null : allowList(options.allowFrom);
    this.tlsFiles = options.tls ?? null;
    if (this.tlsFiles && (!this.tlsFiles.certFile || !this.tlsFiles.keyFile)) throw new ConfigError('tls: both certFile and keyFile are required.');
  }

  /** Binds and starts accepting; resolves with the bound address (the real port when `port` was 0). */
  async listen(): Promise<MllpAddress> {
    if (this.server || this.closing) throw new ConfigError('listen: this MllpServer was already started; create a new one.');
    if (this.tlsFiles) this.secureContext = await loadSecureContext(this.tlsFiles);
    const server = createServer({ allowHalfOpen: true });
    this.server = server;
    server.on('connection', (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.settings.host, port: this.settings.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // After binding, errors are accept failures (EMFILE, ...): log them, keep listening.
    server.on('error', (err: NodeJS.ErrnoException) => this.logger.error({ code: 'internal', errorCode: safeCode(err) }, 'mllp server error'));
    const info = server.address() as AddressInfo;
    this.bound = { host: info.address, port: info.port, family: info.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    const everywhere = info.address === '0.0.0.0' || info.address === '::';
    const fields = { host: info.address, port: info.port, tls: this.secureContext !== null, allowFrom: this.allow !== null };
    if (everywhere && !this.allow) this.logger.warn(fields, 'mllp server listening on all interfaces without allowFrom');
    else this.logger.info(fields, 'mllp server listening');
    return this.bound;
  }

  /** The bound address; throws before `listen()` resolved. */
  address(): MllpAddress {
    if (!this.bound) throw new ConfigError('address: the server is not listening yet; await listen() first.');
    return { ...this.bound };
  }

  /** Current counters. */
  stats(): MllpServerStats {
    let paused = 0;
    let queued = 0;
    for (const c of this.connections) {
      if (c.isPaused) paused++;
      queued += c.queuedFrames;
    }
    return { connections: this.openSockets, pausedConnections: paused, queuedFrames: queued, acknowledged: this.acknowledged };
  }

  /**
   * Stops accepting, lets each connection's in-flight handler finish and write its ACK (frames
   * queued behind it are dropped unacknowledged: their senders resend), closes the connections,
   * and after `closeTimeoutMs` destroys whatever is still open. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const open = [...this.connections];
    for (const c of open) c.shutdown();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(open.map((c) => c.settled)).then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.settings.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      const left = [...this.connections];
      this.logger.warn({ code: 'server_closing', connections: left.length }, 'mllp server closing: in-flight handlers did not finish in time; destroying connections');
      for (const c of left) c.destroy();
    }
    await closed;
    this.logger.info({ acknowledged: this.acknowledged }, 'mllp server closed');
  }

  private accept(socket: Socket): void {
    const remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    // Errors of a socket we refuse (a reset racing the destroy) must not become uncaught exceptions.
    socket.on('error', () => {});
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.allow && !allowed(this.allow, remoteAddress)) {
      this.logger.warn({ remoteAddress, code: 'source_not_allowed' }, 'mllp connection refused');
      socket.destroy();
      return;
    }
    if (this.openSockets >= this.settings.maxConnections) {
      this.logger.warn({ remoteAddress, code: 'too_many_connections', maxConnections: this.settings.maxConnections }, 'mllp connection refused');
      socket.destroy();
      return;
    }
    const conn = new MllpConnection(socket, remoteAddress, this.secureContext, this.settings, this.onMessage, this.logger, () => this.acknowledged++);
    this.connections.add(conn);
    this.openSockets++;
    void conn.closed.then(() => this.openSockets--);
    void conn.settled.then(() => this.connections.delete(conn));
    conn.start();
  }
}

/** One accepted connection: framing, the ordered message queue, timers, and how it ends. */
class MllpConnection {
  readonly ctx: MllpMessageContext;
  /** Resolves once the socket is closed and no handler of this connection is running. */
  readonly settled: Promise<void>;
  private settle!: () => void;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private socket: Socket;
  private readonly framer: MllpFramer;
  private readonly queue: Buffer[] = [];
  private running = false;
  private paused = false;
  /** Reading has stopped for good (framing error, timeout, peer ended, shutdown). */
  private readingStopped = false;
  /** Once the queue drains, close with this code. */
  private closeAfterDrain: CloseCode | null = null;
  private ending = false;
  private isClosed = false;
  private secure: boolean;
  private messages = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private frameTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly raw: Socket,
    remoteAddress: string,
    private readonly secureContext: SecureContext | null,
    private readonly settings: Settings,
    private readonly onMessage: MllpMessageHandler,
    private readonly logger: Logger,
    private readonly onAcknowledged: () => void,
  ) {
    // 16 hex characters: short enough for log lines, random so ids never repeat across restarts.
    this.ctx = Object.freeze({ connectionId: newId().slice(0, 16), remoteAddress, tls: secureContext !== null });
    this.framer = new MllpFramer({ maxBytes: settings.maxBytes });
    this.socket = raw;
    this.secure = secureContext === null;
    this.settled = new Promise<void>((resolve) => (this.settle = resolve));
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get queuedFrames(): number {
    return this.queue.length;
  }

  /** Closed, or destroyed and about to emit 'close': nothing more is handled or written. */
  private get gone(): boolean {
    return this.isClosed || this.socket.destroyed;
  }

  private get ids() {
    return { connectionId: this.ctx.connectionId, remoteAddress: this.ctx.remoteAddress };
  }

  start(): void {
    // ACKs are small and latency-bound: send them at once, not after Nagle's delay.
    this.raw.setNoDelay(true);
    this.raw.setKeepAlive(true, 30_000);
    if (this.secureContext) {
      const tls = new TLSSocket(this.raw, { isServer: true, secureContext: this.secureContext, requestCert: false });
      this.socket = tls;
      // A handshake that never completes is a slowloris too: bounded like a frame.
      this.frameTimer = setTimeout(() => this.fail('tls_handshake_failed', { timeout: true }), this.settings.frameTimeoutMs);
      tls.once('secure', () => {
        this.secure = true;
        this.clearFrameTimer();
        this.logger.debug({ ...this.ids, tls: true, protocol: tls.getProtocol() }, 'mllp connection opened');
        this.armIdle();
      });
    }
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    this.socket.on('close', () => this.onClose());
    if (!this.secureContext) {
      this.logger.debug({ ...this.ids, tls: false }, 'mllp connection opened');
      this.armIdle();
    }
  }

  /** Server shutdown: read nothing more, drop frames not yet started, close after the in-flight one. */
  shutdown(): void {
    if (this.gone) return;
    this.queue.length = 0;
    this.stopReading();
    this.closeAfterDrain ??= 'server_closing';
    if (!this.secure) this.destroy();
    else if (!this.running) this.closeGracefully();
  }

  destroy(): void {
    this.clearTimers();
    // Synchronously: 'close' comes later, and nothing queued may be handled in between.
    this.queue.length = 0;
    this.readingStopped = true;
    this.socket.destroy();
    // The raw socket too: while a TLS handshake is in progress, destroying the wrapper alone may leave it.
    this.raw.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.readingStopped || this.gone) return;
    const wasInFrame = this.framer.inFrame;
    const { frames, error } = this.framer.push(chunk);
    for (const f of frames) this.queue.push(f);
    if (frames.length > 0 || this.framer.inFrame) this.clearIdle();
    if (error) {
      this.logger.warn({ ...this.ids, code: error.code, ...(error.reason ? { reason: error.reason } : {}) }, 'mllp framing error; closing connection');
      this.stopReading();
      // Frames completed before the error are valid messages their sender waits on: handle them first.
      this.closeAfterDrain = error.code;
    } else if (this.framer.inFrame) {
      // The frame timer measures one frame: restart it whenever a new frame begins.
      if (!wasInFrame || frames.length > 0) this.armFrameTimer();
    } else {
      this.clearFrameTimer();
    }
    if (this.queue.length > this.settings.maxQueuedFrames && !this.paused && !this.readingStopped) {
      this.paused = true;
      this.socket.pause();
      // Our own pause must not count against the sender's frame time.
      this.clearFrameTimer();
    }
    this.pump();
  }

  private onEnd(): void {
    // The peer half-closed: answer what it already sent, then close (allowHalfOpen keeps our side writable).
    if (this.framer.inFrame) this.logger.debug({ ...this.ids }, 'mllp peer ended in the middle of a frame; partial frame dropped');
    this.stopReading();
    this.closeAfterDrain ??= 'peer_closed';
    this.pump();
  }

  private onError(err: NodeJS.ErrnoException): void {
    if (!this.secure) this.logger.warn({ ...this.ids, code: 'tls_handshake_failed', errorCode: safeCode(err) }, 'mllp TLS handshake failed; closing connection');
    else this.logger.debug({ ...this.ids, errorCode: safeCode(err) }, 'mllp socket error');
    // The socket destroys itself after an error; 'close' follows.
  }

  private onClose(): void {
    this.isClosed = true;
    this.markClosed();
    this.clearTimers();
    this.queue.length = 0;
    this.logger.debug({ ...this.ids, messages: this.messages, ...(this.closeAfterDrain ? { code: this.closeAfterDrain } : {}) }, 'mllp connection closed');
    if (!this.running) this.settle();
  }

  /** Handles queued frames one at a time, in order; never rejects. */
  private pump(): void {
    if (this.running || this.gone) return;
    this.running = true;
    this.clearIdle();
    this.drain()
      .catch((err: unknown) => {
        this.logger.error({ ...this.ids, code: 'internal', errorCode: safeCode(err) }, 'mllp connection failed');
        this.destroy();
      })
      .finally(() => {
        this.running = false;
        if (this.isClosed) this.settle();
        else if (!this.gone) this.afterDrain();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.gone) {
      const payload = this.queue.shift() as Buffer;
      this.maybeResume();
      let answer: unknown;
      try {
        answer = await this.onMessage(payload, this.ctx);
      } catch (err) {
        this.fail('handler_failed', { handlerError: safeCode(err) });
        return;
      }
      if (this.gone) return;
      const frame = toAckFrame(answer);
      if (!frame) {
        this.fail('invalid_ack', {});
        return;
      }
      if (!(await this.write(frame))) return;
      this.messages++;
      this.onAcknowledged();
    }
  }

  private afterDrain(): void {
    if (this.gone || this.ending) return;
    if (this.queue.length > 0) {
      this.pump();
      return;
    }
    if (this.closeAfterDrain !== null) {
      this.closeGracefully();
      return;
    }
    if (!this.framer.inFrame) this.armIdle();
  }

  /** Resolves true once the frame is handed to the kernel, false if the socket closed first. */
  private write(frame: Buffer): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      // A peer that stops reading its ACKs would hold this connection, and its slot, forever.
      const timer = setTimeout(() => this.fail('write_timeout', {}), this.settings.frameTimeoutMs);
      const onClose = () => {
        clearTimeout(timer);
        resolve(false);
      };
      this.socket.once('close', onClose);
      this.socket.write(frame, (err) => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
        resolve(!err);
      });
    });
  }

  private maybeResume(): void {
    if (!this.paused || this.readingStopped) return;
    if (this.queue.length > Math.floor(this.settings.maxQueuedFrames / 2)) return;
    this.paused = false;
    this.socket.resume();
    if (this.framer.inFrame) this.armFrameTimer();
  }

  private stopReading(): void {
    this.readingStopped = true;
    this.paused = false;
    this.socket.pause();
    this.clearFrameTimer();
  }

  /** Logs the code and closes at once: no more ACKs on this connection. */
  private fail(code: MllpErrorCode, fields: Record<string, unknown>): void {
    if (this.gone) return;
    this.closeAfterDrain = code;
    this.logger.warn({ ...this.ids, code, ...fields }, 'mllp connection closed on error');
    this.destroy();
  }

  /** Ends our side once the ACKs written so far are flushed, then releases the socket. */
  private closeGracefully(): void {
    if (this.ending || this.gone) return;
    this.ending = true;
    this.clearTimers();
    this.socket.end(() => this.socket.destroy());
    // A peer that stops reading could hold the end forever: bound it.
    this.lingerTimer = setTimeout(() => this.destroy(), this.settings.frameTimeoutMs);
  }

  private armIdle(): void {
    if (this.gone || this.ending || this.readingStopped) return;
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.logger.info({ ...this.ids, code: 'idle_timeout' }, 'mllp connection idle; closing');
      this.closeAfterDrain = 'idle_timeout';
      this.stopReading();
      this.closeGracefully();
    }, this.settings.idleTimeoutMs);
  }

  private armFrameTimer(): void {
    this.clearFrameTimer();
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      this.logger.warn({ ...this.ids, code: 'frame_timeout', bufferedBytes: this.framer.bufferedBytes }, 'mllp frame not finished in time; closing connection');
      this.stopReading();
      this.closeAfterDrain = 'frame_timeout';
      // Frames completed before this one are still answered; then the connection closes.
      this.pump();
    }, this.settings.frameTimeoutMs);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private clearFrameTimer(): void {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  private clearTimers(): void {
    this.clearIdle();
    this.clearFrameTimer();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }
}

/** The handler's answer as a frame, or null when it cannot be sent (empty, not bytes, MLLP control bytes). */
function toAckFrame(answer: unknown): Buffer | null {
  let bytes: Buffer;
  if (typeof answer === 'string') bytes = Buffer.from(answer, 'utf8');
  else if (answer instanceof Uint8Array) bytes = Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength);
  else return null;
  if (bytes.length === 0) return null;
  try {
    return encodeMllpFrame(bytes);
  } catch {
    return null;
  }
}

/** An error's code or name when it looks like an identifier; never its message (which may quote content). */
function safeCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  for (const key of ['code', 'name'] as const) {
    const v = (err as Record<string, unknown>)[key];
    if (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return v;
  }
  return undefined;
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(`${name}: must be an integer from ${min} to ${max}.`);
  return value;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: dual-stack sockets report IPv4 peers that way. */
function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? (mapped[1] as string) : address;
}

function allowList(entries: string[]): BlockList {
  if (!Array.isArray(entries) || entries.length === 0) throw new ConfigError('allowFrom: list at least one address or CIDR range, or omit it to allow any source.');
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', prefix, extra] = String(entry).trim().split('/');
    const address = normalizeAddress(addr);
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
      throw new ConfigError(`allowFrom: "${entry}" is not an IP address or CIDR range (e.g. 10.1.2.3 or 10.1.0.0/16).`);
    }
    list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

function allowed(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

async function loadSecureContext(files: { certFile: string; keyFile: string }): Promise<SecureContext> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw new ConfigError(`tls: cannot read certFile or keyFile (${safeCode(err) ?? 'error'}); check the paths and permissions.`);
  }
  try {
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new ConfigError(`tls: certFile/keyFile are not a usable PEM certificate and key (${safeCode(err) ?? 'error'}).`);
  }
}
