/**
 * @module connectors/hl7v2/mllp-connection — one accepted MLLP connection of an
 * {@link MllpServer}: framing, the ordered message queue, timers, and how it ends. The server
 * (mllp-server.ts) accepts, limits and shuts down; this file owns everything after accept.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { safeErrorCode } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import type { Logger } from '../../domain/logger.js';
import { encodeMllpFrame, MllpFramer } from './mllp-framer.js';
import type { MllpErrorCode } from './mllp-framer.js';

/** What the handler learns about the connection a message came on (ids only, for logs and routing). */
export interface MllpMessageContext {
  /** Random id of the connection, unique per server run; in every log line about it. */
  connectionId: string;
  /** The peer's IP address (IPv4-mapped IPv6 addresses shown as IPv4). */
  remoteAddress: string;
  /** True when the connection is TLS. */
  tls: boolean;
  /**
   * Aborted when the connection closes (peer gone, error, timeout, shutdown) or the handler ran
   * past `handlerTimeoutMs`: its ACK can no longer be delivered, so a handler should stop work it
   * can stop (and must not commit anything it would then need to undo).
   */
  signal: AbortSignal;
}

/**
 * Handles one message (the frame's payload, framing removed) and returns the ACK to send back,
 * unframed, as bytes: the wiring encodes it with the message's charset (the parser's `encodeText`);
 * a string or an empty answer is not sent (`invalid_ack`).
 *
 * Throw only for a failure that may succeed on retry (database down, shutdown): throwing means
 * "not handled", so no ACK is sent and the connection is closed, and the sender resends. A message
 * that fails every time (unparseable, invalid, unsupported) must be answered with an AE/AR ACK
 * instead: left unacknowledged, the sender resends it forever and every message queued behind it
 * waits.
 *
 * Ordering is per connection: the next message of a connection is handled only after this one's
 * ACK was written. A sender that gives up on a connection and reconnects could overtake a handler
 * still running on its old connection; to prevent that, a new connection from the same remote
 * address handles its first message only once the handlers of that address's earlier, closing
 * connections settled (at most `handlerTimeoutMs`). Two senders behind one address are still
 * handled in parallel while both their connections are open.
 */
export type MllpMessageHandler = (payload: Buffer, ctx: MllpMessageContext) => Promise<Buffer>;

/** The server settings a connection uses. */
export interface ConnectionSettings {
  maxBytes: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
  maxQueuedFrames: number;
  handlerTimeoutMs: number;
}

/** What a connection needs from its server. */
export interface ConnectionHooks {
  /** Counts a message acknowledged. */
  onAcknowledged(): void;
  /** The in-flight handlers of this address's earlier connections that stopped reading (a reconnect overtaking them is what ordering must prevent). */
  earlierHandlers(): Promise<void>[];
}

/** Why a connection ended: a catalogue code, or the peer closing normally. */
type CloseCode = MllpErrorCode | 'peer_closed';

/** One accepted connection: framing, the ordered message queue, timers, and how it ends. */
export class MllpConnection {
  readonly ctx: MllpMessageContext;
  /** Resolves once the socket is closed and no handler of this connection is running. */
  readonly settled: Promise<void>;
  private settle!: () => void;
  private readonly abort = new AbortController();
  /** Settles when the running handler settled or timed out; null while none runs. */
  private inFlight: Promise<void> | null = null;
  /** The first frame waited for the earlier connections of this address (or there was none). */
  private waitedForEarlier = false;
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
  /** The TLS handshake is done (always true for plaintext): the connection may carry messages. */
  private handshakeDone: boolean;
  private messages = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private frameTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly raw: Socket,
    remoteAddress: string,
    private readonly secureContext: SecureContext | null,
    private readonly settings: ConnectionSettings,
    private readonly onMessage: MllpMessageHandler,
    private readonly logger: Logger,
    private readonly hooks: ConnectionHooks,
  ) {
    // 16 hex characters: short enough for log lines, random so ids never repeat across restarts.
    this.ctx = Object.freeze({ connectionId: newId().slice(0, 16), remoteAddress, tls: secureContext !== null, signal: this.abort.signal });
    this.framer = new MllpFramer({ maxBytes: settings.maxBytes });
    this.socket = raw;
    this.handshakeDone = secureContext === null;
    this.settled = new Promise<void>((resolve) => (this.settle = resolve));
  }

  /** The running handler (settles when it settled or timed out), if reading stopped for good: a reconnect must not overtake it. */
  get closingHandler(): Promise<void> | null {
    return this.readingStopped || this.gone ? this.inFlight : null;
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
        this.handshakeDone = true;
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
    if (!this.handshakeDone) this.destroy();
    else if (!this.running) this.closeGracefully();
  }

  destroy(): void {
    this.clearTimers();
    // Synchronously: 'close' comes later, and nothing queued may be handled in between.
    this.queue.length = 0;
    this.readingStopped = true;
    this.abort.abort();
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
    if (!this.handshakeDone) this.logger.warn({ ...this.ids, code: 'tls_handshake_failed', errorCode: safeErrorCode(err) }, 'mllp TLS handshake failed; closing connection');
    else this.logger.debug({ ...this.ids, errorCode: safeErrorCode(err) }, 'mllp socket error');
    // The socket destroys itself after an error; 'close' follows.
  }

  private onClose(): void {
    this.isClosed = true;
    this.abort.abort();
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
        this.logger.error({ ...this.ids, code: 'internal', errorCode: safeErrorCode(err) }, 'mllp connection failed');
        this.destroy();
      })
      .finally(() => {
        this.running = false;
        if (this.isClosed) this.settle();
        else if (!this.gone) this.afterDrain();
      });
  }

  private async drain(): Promise<void> {
    if (!this.waitedForEarlier && this.queue.length > 0) {
      this.waitedForEarlier = true;
      await this.waitForEarlier();
    }
    while (this.queue.length > 0 && !this.gone) {
      const payload = this.queue.shift() as Buffer;
      this.maybeResume();
      const outcome = await this.callHandler(payload);
      if (outcome === null || this.gone) return;
      const frame = toAckFrame(outcome.answer);
      if (!frame) {
        this.fail('invalid_ack', {});
        return;
      }
      if (!(await this.write(frame))) return;
      this.messages++;
      this.hooks.onAcknowledged();
    }
  }

  /** A reconnecting sender must not overtake its old connection's handler: wait for it (bounded). */
  private async waitForEarlier(): Promise<void> {
    const pending = this.hooks.earlierHandlers();
    if (pending.length === 0) return;
    this.logger.debug({ ...this.ids, waitingFor: pending.length }, 'mllp first message waits for handlers of earlier connections from this address');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(pending), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.settings.handlerTimeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Runs the handler for one message, bounded by handlerTimeoutMs. Resolves with its answer, or
   * null when it threw or timed out (the connection is then failed: no ACK, the sender resends).
   */
  private async callHandler(payload: Buffer): Promise<{ answer: unknown } | null> {
    let done!: () => void;
    this.inFlight = new Promise<void>((resolve) => (done = resolve));
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.settings.handlerTimeoutMs)));
      // The executor catches a handler that throws synchronously instead of returning a promise.
      const answered = new Promise<unknown>((resolve) => resolve(this.onMessage(payload, this.ctx))).then((answer) => ({ answer }));
      const outcome = await Promise.race([answered, timeout]);
      if (outcome !== 'timeout') return outcome;
      // The connection counted against maxConnections until now; the handler may still run, but its signal is aborted.
      if (this.gone) this.logger.warn({ ...this.ids, code: 'handler_timeout' }, 'mllp handler did not settle in time; connection already closed');
      else this.fail('handler_timeout', {});
      this.abort.abort();
      return null;
    } catch (err) {
      this.fail('handler_failed', { handlerError: safeErrorCode(err) });
      return null;
    } finally {
      clearTimeout(timer);
      this.inFlight = null;
      done();
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

/**
 * The handler's answer as a frame, or null when it cannot be sent: not bytes (a string too — its
 * charset is the wiring's to choose), empty, or containing MLLP control bytes.
 */
export function toAckFrame(answer: unknown): Buffer | null {
  if (!(answer instanceof Uint8Array)) return null;
  const bytes = Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength);
  if (bytes.length === 0) return null;
  try {
    return encodeMllpFrame(bytes);
  } catch {
    return null;
  }
}
