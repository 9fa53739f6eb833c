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
import type { BlockList } from 'node:net';
import { createServer } from 'node:net';
import { isAllowed, parseAllowList } from './allow-list.js';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { ConfigError, safeErrorCode } from '../../domain/errors.js';
import type { Logger } from '../../domain/logger.js';
import { silentLogger } from '../../domain/logger.js';
import { unmapIpv4 } from '../../domain/network.js';
import { MllpConnection } from './mllp-connection.js';
import type { MllpMessageHandler } from './mllp-connection.js';
import { DEFAULT_MAX_FRAME_BYTES, MllpError } from './mllp-framer.js';

export type { MllpMessageContext, MllpMessageHandler } from './mllp-connection.js';

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
  /**
   * Longest a handler may run for one message. Past it the connection is closed without an ACK
   * (`handler_timeout`, the sender resends), the handler's `signal` is aborted, and the connection
   * stops counting against `maxConnections`. Default 30 s.
   */
  handlerTimeoutMs?: number;
  /**
   * Most connections at once; more are refused at once. A connection counts from accept until its
   * socket closed and its handler settled (or timed out): a sender resetting connections cannot
   * pile up running handlers. Default 100.
   */
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
  /** Connections counting against maxConnections: open, or closed with their handler still running. */
  connections: number;
  /** Connections whose reading is paused because their queue is full. */
  pausedConnections: number;
  /** Complete frames waiting for their handler, over all connections (the one being handled excluded). */
  queuedFrames: number;
  /** Messages acknowledged since start. */
  acknowledged: number;
  /** Connections refused since start (source not allowed, too many connections, shutting down excluded). */
  refusedConnections: number;
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
  handlerTimeoutMs: number;
}

/** One warn line per refused address per window; the rest are counted. */
const REFUSED_LOG_WINDOW_MS = 60_000;
/** Addresses remembered for that; beyond, refusals of new addresses are counted, not logged. */
const REFUSED_LOG_ADDRESSES = 4096;


/** An MLLP listener. `listen()` binds, `close()` drains and stops. One instance listens once. */
export class MllpServer {
  private readonly settings: Settings;
  private readonly onMessage: MllpMessageHandler;
  private readonly logger: Logger;
  private readonly allow: BlockList | null;
  private readonly tlsFiles: { certFile: string; keyFile: string } | null;
  /** Connections until their socket closed and their handler settled: what maxConnections limits and close() waits for. */
  private readonly connections = new Set<MllpConnection>();
  /** Per refused address: when its last warn line was written, and refusals since, not logged. */
  private readonly refusedLog = new Map<string, { at: number; suppressed: number }>();
  private refused = 0;
  private server: Server | null = null;
  /** The running listen(), which close() waits for. */
  private starting: Promise<unknown> | null = null;
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
      handlerTimeoutMs: integer('handlerTimeoutMs', options.handlerTimeoutMs ?? 30_000, 1, 2 ** 31 - 1),
    };
    this.onMessage = options.onMessage;
    this.logger = options.logger ?? silentLogger;
    this.allow = options.allowFrom === undefined ? null : parseAllowList(options.allowFrom, 'allowFrom');
    this.tlsFiles = options.tls ?? null;
    if (this.tlsFiles && (!this.tlsFiles.certFile || !this.tlsFiles.keyFile)) throw new ConfigError('tls: both certFile and keyFile are required.');
  }

  /**
   * Binds and starts accepting; resolves with the bound address (the real port when `port` was 0).
   * Rejects with `server_closing` when `close()` was called before it finished (nothing stays bound).
   */
  listen(): Promise<MllpAddress> {
    if (this.starting || this.closing) return Promise.reject(new ConfigError('listen: this MllpServer was already started; create a new one.'));
    const starting = this.start();
    this.starting = starting;
    return starting;
  }

  private async start(): Promise<MllpAddress> {
    if (this.tlsFiles) this.secureContext = await loadSecureContext(this.tlsFiles);
    if (this.closing) throw closingError();
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.settings.host, port: this.settings.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (this.closing) {
      // close() waits for this listen() and then finds no server: release the port here.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw closingError();
    }
    this.server = server;
    // After binding, errors are accept failures (EMFILE, ...): log them, keep listening.
    server.on('error', (err: NodeJS.ErrnoException) => this.logger.error({ code: 'internal', errorCode: safeErrorCode(err) }, 'mllp server error'));
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
    return { connections: this.connections.size, pausedConnections: paused, queuedFrames: queued, acknowledged: this.acknowledged, refusedConnections: this.refused };
  }

  /**
   * Stops accepting, lets each connection's in-flight handler finish and write its ACK (frames
   * queued behind it are dropped unacknowledged: their senders resend), closes the connections,
   * and after `closeTimeoutMs` destroys whatever is still open. Called during `listen()`, it waits
   * for it and that `listen()` rejects with `server_closing`. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // Only a listen() still running is awaited: a finished one must stop accepting synchronously here.
    if (this.starting && !this.server) await this.starting.catch(() => {});
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
    const remoteAddress = unmapIpv4(socket.remoteAddress ?? '');
    // Errors of a socket we refuse (a reset racing the destroy) must not become uncaught exceptions.
    socket.on('error', () => {});
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.allow && !isAllowed(this.allow, remoteAddress)) {
      this.refuse(socket, remoteAddress, { code: 'source_not_allowed' });
      return;
    }
    if (this.connections.size >= this.settings.maxConnections) {
      this.refuse(socket, remoteAddress, { code: 'too_many_connections', maxConnections: this.settings.maxConnections });
      return;
    }
    // Accepted before this one, from the same address: a reconnect must not overtake their handlers.
    const earlier = [...this.connections].filter((c) => c.ctx.remoteAddress === remoteAddress);
    const conn = new MllpConnection(socket, remoteAddress, this.secureContext, this.settings, this.onMessage, this.logger, {
      onAcknowledged: () => this.acknowledged++,
      earlierHandlers: () => earlier.map((c) => c.closingHandler).filter((p): p is Promise<void> => p !== null),
    });
    this.connections.add(conn);
    void conn.settled.then(() => this.connections.delete(conn));
    conn.start();
  }

  /** Closes a refused socket. Logs the first refusal per address per minute; a scanner must not flood the log. */
  private refuse(socket: Socket, remoteAddress: string, fields: { code: 'source_not_allowed' | 'too_many_connections'; maxConnections?: number }): void {
    socket.destroy();
    this.refused++;
    const now = Date.now();
    let entry = this.refusedLog.get(remoteAddress);
    if (entry && now - entry.at < REFUSED_LOG_WINDOW_MS) {
      entry.suppressed++;
      return;
    }
    if (!entry && this.refusedLog.size >= REFUSED_LOG_ADDRESSES) {
      for (const [address, e] of this.refusedLog) if (now - e.at >= REFUSED_LOG_WINDOW_MS) this.refusedLog.delete(address);
      // Still full: a flood from many addresses; counted in stats() only.
      if (this.refusedLog.size >= REFUSED_LOG_ADDRESSES) return;
    }
    const suppressed = entry?.suppressed ?? 0;
    entry = { at: now, suppressed: 0 };
    this.refusedLog.set(remoteAddress, entry);
    this.logger.warn({ remoteAddress, ...fields, ...(suppressed > 0 ? { suppressedSinceLastLine: suppressed } : {}) }, 'mllp connection refused');
  }
}


function closingError(): MllpError {
  return new MllpError('server_closing', 'close() was called before listen() finished; the server is not listening.');
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(`${name}: must be an integer from ${min} to ${max}.`);
  return value;
}

async function loadSecureContext(files: { certFile: string; keyFile: string }): Promise<SecureContext> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw new ConfigError(`tls: cannot read certFile or keyFile (${safeErrorCode(err) ?? 'error'}); check the paths and permissions.`);
  }
  try {
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new ConfigError(`tls: certFile/keyFile are not a usable PEM certificate and key (${safeErrorCode(err) ?? 'error'}).`);
  }
}
