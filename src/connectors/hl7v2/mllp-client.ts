/**
 * @module connectors/hl7v2/mllp-client — a minimal MLLP sender for tests and benchmarks: frame a
 * message, send it, wait for the framed answer (the ACK), with a timeout. Not a production sender:
 * no reconnects, no resends.
 *
 * Answers are matched to sends by order, which MLLP guarantees per connection (the receiver
 * answers every message, in order). Several sends may be in flight on one connection (pipelining,
 * for benchmarks); a timeout or a framing error ends the connection, since answers can no longer
 * be matched to messages after either.
 */
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { DEFAULT_MAX_FRAME_BYTES, encodeMllpFrame, MllpError, MllpFramer } from './mllp-framer.js';

/** Options of {@link mllpSend} and {@link openMllpConnection}. */
export interface MllpSendOptions {
  /** Time allowed to connect, and then for each whole answer (a receiver dribbling bytes does not extend it). Default 10 s. */
  timeoutMs?: number;
  /** Connect with TLS; `true` for defaults, or node:tls options (e.g. `{ ca }` for a self-signed server). */
  tls?: boolean | ConnectionOptions;
  /** Largest answer payload accepted, in bytes. Default 1 MiB. */
  maxBytes?: number;
}

/** An open MLLP connection that sends messages and resolves each with its answer. */
export interface MllpClientConnection {
  /** Frames and sends `payload`; resolves with the answer's payload (framing removed). */
  send(payload: Buffer | string): Promise<Buffer>;
  /** Closes the connection; sends still waiting reject with `connection_closed`. */
  close(): void;
  /** The underlying socket (for tests that need to watch it). */
  readonly socket: Socket;
}

interface Waiter {
  resolve: (answer: Buffer) => void;
  reject: (err: MllpError) => void;
}

/** Opens a connection to an MLLP receiver; rejects with `connect_failed` (or `ack_timeout` on a silent host). */
export function openMllpConnection(host: string, port: number, options: MllpSendOptions = {}): Promise<MllpClientConnection> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const framer = new MllpFramer({ maxBytes: options.maxBytes ?? DEFAULT_MAX_FRAME_BYTES });
  const waiting: Waiter[] = [];
  let failure: MllpError | null = null;
  let timer: NodeJS.Timeout | null = null;

  const useTls = options.tls !== undefined && options.tls !== false;
  const tlsOptions: ConnectionOptions = typeof options.tls === 'object' ? options.tls : {};
  const socket: Socket = useTls
    ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...tlsOptions })
    : netConnect({ host, port });
  socket.setNoDelay(true);

  /** Ends the connection for good: every waiting and later send rejects with `err`. */
  const fail = (err: MllpError): void => {
    failure ??= err;
    if (timer) clearTimeout(timer);
    timer = null;
    for (const w of waiting.splice(0)) w.reject(failure);
    socket.destroy();
  };
  /** One timer for the oldest waiting answer: it restarts when a whole answer arrived, never on a mere chunk. */
  const armTimer = (): void => {
    if (timer) clearTimeout(timer);
    timer = waiting.length === 0 ? null : setTimeout(() => fail(new MllpError('ack_timeout', `No answer within ${timeoutMs} ms.`)), timeoutMs);
  };

  socket.on('data', (chunk: Buffer) => {
    const { frames, error } = framer.push(chunk);
    for (const frame of frames) {
      const w = waiting.shift();
      if (!w) {
        fail(new MllpError('malformed_framing', 'An answer arrived with no message waiting for one.'));
        return;
      }
      w.resolve(frame);
    }
    if (error) fail(error);
    else if (frames.length > 0) armTimer();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => fail(new MllpError('connection_closed', `The connection failed (${err.code ?? err.name}).`, { cause: err })));
  socket.on('close', () => fail(new MllpError('connection_closed', 'The receiver closed the connection before answering.')));

  const connection: MllpClientConnection = {
    socket,
    send(payload) {
      if (failure) return Promise.reject(failure);
      let frame: Buffer;
      try {
        frame = encodeMllpFrame(payload);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise<Buffer>((resolve, reject) => {
        waiting.push({ resolve, reject });
        if (waiting.length === 1) armTimer();
        socket.write(frame);
      });
    },
    close() {
      fail(new MllpError('connection_closed', 'The connection was closed by the client.'));
    },
  };

  return new Promise<MllpClientConnection>((resolve, reject) => {
    const connectTimer = setTimeout(() => {
      reject(new MllpError('connect_failed', `Could not connect within ${timeoutMs} ms.`));
      socket.destroy();
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      reject(new MllpError('connect_failed', `Could not connect (${err.code ?? err.name}).`, { cause: err }));
    };
    socket.once('error', onError);
    socket.once(useTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      socket.off('error', onError);
      resolve(connection);
    });
  });
}

/**
 * Sends one message over a fresh connection and resolves with the receiver's answer payload
 * (the ACK, framing removed); the connection is closed either way. Rejects with an
 * {@link MllpError}: `connect_failed`, `ack_timeout`, `connection_closed` or a framing code.
 */
export async function mllpSend(host: string, port: number, payload: Buffer | string, options: MllpSendOptions = {}): Promise<Buffer> {
  const connection = await openMllpConnection(host, port, options);
  try {
    return await connection.send(payload);
  } finally {
    connection.close();
  }
}
