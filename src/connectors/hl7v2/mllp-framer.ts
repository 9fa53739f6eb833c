/**
 * @module connectors/hl7v2/mllp-framer — MLLP framing, pure and incremental: bytes in, complete
 * frames' payloads out, and the MLLP error catalogue the server and the client share.
 *
 * A frame is `0x0B` (start block) + payload + `0x1C 0x0D` (end block, carriage return). TCP
 * delivers bytes in arbitrary chunks, so the framer keeps the partial frame between pushes: one
 * frame may arrive a byte at a time, and one chunk may hold many frames (all of them are returned,
 * in order — a framer that returns only the first of two coalesced frames loses messages).
 *
 * Decisions:
 * - Between frames, CR and LF are skipped silently: several interface engines end each frame with
 *   an extra LF or CRLF (and Debian's `mllp_send` output separates answers with LF). Any other byte
 *   outside a frame is `malformed_framing` (reason `data_outside_frame`), not discarded: a sender
 *   that does not speak MLLP (raw HL7 without framing, TLS or HTTP on a plaintext port, a port
 *   scanner) must fail loudly at once, not wait for ACKs that never come while we drop its bytes.
 * - The payload limit (`maxBytes`, framing bytes excluded) is checked as bytes arrive, so an
 *   oversized frame fails after `maxBytes + 1` bytes instead of after the whole frame is buffered.
 * - An empty frame (`0x0B 0x1C 0x0D`) is a frame with an empty payload; the handler decides.
 * - After an error the framer is stopped: every later push returns the same error and no frame.
 *   MLLP has no way to resynchronise reliably, so the connection must be closed.
 *
 * No I/O, no clock: the server owns sockets and timers.
 */

/** MLLP start block (vertical tab). */
export const MLLP_START_BLOCK = 0x0b;
/** MLLP end block (file separator), followed by {@link MLLP_CARRIAGE_RETURN}. */
export const MLLP_END_BLOCK = 0x1c;
/** The carriage return that must follow the end block. */
export const MLLP_CARRIAGE_RETURN = 0x0d;
const LINE_FEED = 0x0a;

/** Default payload limit of one frame: 1 MiB (an SIU/ADT message is a few KiB). */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Every MLLP error and connection-close code, with whether the sender may succeed by trying again
 * (`retryable`) and what it means. Codes are stable: logs and alerts key on them.
 */
export const MLLP_ERROR_CODES = {
  frame_too_large: { retryable: false, summary: 'A frame payload exceeded maxBytes; the connection is closed without reading the rest.' },
  malformed_framing: { retryable: false, summary: 'The byte stream is not MLLP (see reason); the connection is closed.' },
  frame_timeout: { retryable: true, summary: 'A frame was started but not finished within frameTimeoutMs (slow sender); the connection is closed.' },
  idle_timeout: { retryable: true, summary: 'No message started within idleTimeoutMs; the idle connection is closed.' },
  source_not_allowed: { retryable: false, summary: 'The source address is not in allowFrom; the connection is closed at once.' },
  too_many_connections: { retryable: true, summary: 'maxConnections are open; the new connection is closed at once.' },
  handler_failed: { retryable: true, summary: 'The message handler threw; no ACK is sent and the connection is closed so the sender resends.' },
  handler_timeout: { retryable: true, summary: 'The message handler did not settle within handlerTimeoutMs; no ACK is sent, its signal is aborted and the connection is closed.' },
  write_timeout: { retryable: true, summary: 'An ACK could not be written within frameTimeoutMs (the peer does not read); the connection is closed.' },
  invalid_ack: { retryable: true, summary: 'The handler returned an empty ACK or one containing MLLP control bytes; nothing is sent and the connection is closed.' },
  tls_handshake_failed: { retryable: true, summary: 'The TLS handshake with the sender failed or timed out.' },
  server_closing: { retryable: true, summary: 'The server is shutting down; connections are closed after in-flight messages.' },
  connect_failed: { retryable: true, summary: 'Client: the connection could not be opened.' },
  ack_timeout: { retryable: true, summary: 'Client: no framed answer arrived within the timeout.' },
  connection_closed: { retryable: true, summary: 'Client: the peer closed the connection before answering.' },
} as const;

/** A stable MLLP error code from {@link MLLP_ERROR_CODES}. */
export type MllpErrorCode = keyof typeof MLLP_ERROR_CODES;

/** Why a byte stream is `malformed_framing`. Stable, logged next to the code. */
export type MllpFramingReason =
  /** A byte other than CR/LF where a start block was expected. */
  | 'data_outside_frame'
  /** A start block inside a frame (a frame that never ended, then a new one). */
  | 'start_in_frame'
  /** An end block not followed by a carriage return. */
  | 'end_without_cr'
  /** A payload to send contains a start or end block, which would break the framing. */
  | 'control_byte_in_payload';

/**
 * An MLLP error: a stable `code`, whether retrying can help, and for framing errors the `reason`
 * and the stream `offset` where it was detected. Messages never contain payload bytes.
 */
export class MllpError extends Error {
  readonly code: MllpErrorCode;
  readonly retryable: boolean;
  readonly reason: MllpFramingReason | undefined;
  /** Byte offset in the stream (counted from the framer's first byte) where the error was detected. */
  readonly offset: number | undefined;

  constructor(code: MllpErrorCode, message: string, details?: { reason?: MllpFramingReason; offset?: number; cause?: unknown }) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'MllpError';
    this.code = code;
    this.retryable = MLLP_ERROR_CODES[code].retryable;
    this.reason = details?.reason;
    this.offset = details?.offset;
  }
}

/** Options of an {@link MllpFramer}. */
export interface MllpFramerOptions {
  /** Largest payload accepted, in bytes, framing excluded. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxBytes?: number;
}

/** What one {@link MllpFramer.push} produced: the frames completed, in order, and the error that stopped the framer, if any. */
export interface MllpFramerResult {
  /** Payloads of the frames completed by this chunk, in stream order (frames before an error included). */
  frames: Buffer[];
  /** Set when the stream is not valid MLLP; the framer is stopped from then on. */
  error: MllpError | null;
}

type State = 'between' | 'in_frame' | 'after_end';

/**
 * The incremental MLLP decoder. Feed it every chunk read from a connection, in order, with
 * {@link push}; it returns the payloads of the frames each chunk completes.
 */
export class MllpFramer {
  readonly maxBytes: number;
  private state: State = 'between';
  /** Pieces of the frame in progress; concatenated once, when the frame ends. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Stream offset of the next byte pushed. */
  private consumed = 0;
  private stoppedBy: MllpError | null = null;

  constructor(options: MllpFramerOptions = {}) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be a positive integer');
    this.maxBytes = maxBytes;
  }

  /** True while a frame has started and not ended (the server's frame timeout runs meanwhile). */
  get inFrame(): boolean {
    return this.state !== 'between' && this.stoppedBy === null;
  }

  /** Payload bytes held for the frame in progress. */
  get bufferedBytes(): number {
    return this.partBytes;
  }

  /** The error that stopped the framer, or null while it is reading. */
  get error(): MllpError | null {
    return this.stoppedBy;
  }

  /** Consumes one chunk; returns the frames it completed and the error it hit, if any. Never throws. */
  push(chunk: Uint8Array): MllpFramerResult {
    if (this.stoppedBy) return { frames: [], error: this.stoppedBy };
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const frames: Buffer[] = [];
    const base = this.consumed;
    this.consumed += buf.length;
    let pos = 0;
    while (pos < buf.length) {
      if (this.state === 'between') {
        const byte = buf[pos] as number;
        if (byte === MLLP_START_BLOCK) this.state = 'in_frame';
        else if (byte !== MLLP_CARRIAGE_RETURN && byte !== LINE_FEED) {
          return this.stop(frames, 'malformed_framing', 'Bytes outside an MLLP frame (expected a start block 0x0B).', 'data_outside_frame', base + pos);
        }
        pos++;
      } else if (this.state === 'in_frame') {
        // Native scans (indexOf) over the chunk, not a byte loop in JS: frames are mostly payload.
        const end = buf.indexOf(MLLP_END_BLOCK, pos);
        const stop = end === -1 ? buf.length : end;
        const found = buf.indexOf(MLLP_START_BLOCK, pos);
        const startInside = found !== -1 && found < stop ? found : -1;
        // Whichever violation comes first in the stream is reported, so the outcome never depends
        // on how the stream was chunked.
        const contentEnd = startInside === -1 ? stop : startInside;
        if (this.partBytes + (contentEnd - pos) > this.maxBytes) {
          return this.stop(frames, 'frame_too_large', `A frame payload exceeded ${this.maxBytes} bytes.`, undefined, base + pos + (this.maxBytes - this.partBytes));
        }
        if (startInside !== -1) {
          return this.stop(frames, 'malformed_framing', 'A start block 0x0B inside a frame.', 'start_in_frame', base + startInside);
        }
        if (stop > pos) {
          // subarray shares the socket's chunk; the final concat copies, so nothing aliases it later.
          this.parts.push(buf.subarray(pos, stop));
          this.partBytes += stop - pos;
        }
        pos = stop;
        if (end !== -1) {
          this.state = 'after_end';
          pos++;
        }
      } else {
        if (buf[pos] !== MLLP_CARRIAGE_RETURN) {
          return this.stop(frames, 'malformed_framing', 'An end block 0x1C not followed by 0x0D.', 'end_without_cr', base + pos);
        }
        pos++;
        frames.push(this.parts.length === 1 ? Buffer.from(this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partBytes));
        this.parts = [];
        this.partBytes = 0;
        this.state = 'between';
      }
    }
    return { frames, error: null };
  }

  private stop(frames: Buffer[], code: MllpErrorCode, message: string, reason: MllpFramingReason | undefined, offset: number): MllpFramerResult {
    this.stoppedBy = new MllpError(code, message, { ...(reason === undefined ? {} : { reason }), offset });
    this.parts = [];
    this.partBytes = 0;
    return { frames, error: this.stoppedBy };
  }
}

/**
 * Frames one payload for sending: `0x0B` + payload + `0x1C 0x0D`. A string is encoded as UTF-8.
 * Throws `malformed_framing` (reason `control_byte_in_payload`) when the payload holds a start or
 * end block: sent as is, it would cut the frame short or open a new one at the receiver.
 */
export function encodeMllpFrame(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const bad = [body.indexOf(MLLP_START_BLOCK), body.indexOf(MLLP_END_BLOCK)].filter((i) => i !== -1);
  if (bad.length > 0) {
    throw new MllpError('malformed_framing', 'A payload to frame contains an MLLP start or end block.', { reason: 'control_byte_in_payload', offset: Math.min(...bad) });
  }
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = MLLP_START_BLOCK;
  body.copy(out, 1);
  out[body.length + 1] = MLLP_END_BLOCK;
  out[body.length + 2] = MLLP_CARRIAGE_RETURN;
  return out;
}
