/**
 * @module delivery/http-sender — the one place webhooks touch the network: POSTs the stored bytes
 * unchanged with undici (a keep-alive pool per origin), under a timeout, refusing at connect time any
 * address the URL rules forbid, and reporting what happened without ever throwing.
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { NetworkErrorClass, SendResult } from './classify.js';
import type { EndpointUrlPolicy } from '../domain/network-policy.js';
import { addressProblem, schemeAllowed } from '../domain/network-policy.js';

/** One request to send. */
export interface SendRequest {
  url: string;
  headers: Record<string, string>;
  /** The exact bytes to send (UTF-8). */
  body: string;
  timeoutMs: number;
}

/** Sends one webhook attempt and reports what happened; never throws. */
export interface Sender {
  send(req: SendRequest): Promise<SendResult>;
  close(): Promise<void>;
}

/** Options of the undici sender. */
export interface HttpSenderOptions {
  /** Which addresses may be connected to (the same rules as registration). */
  policy: EndpointUrlPolicy;
  /**
   * Most connections per origin. Default 256. Concurrency is capped per endpoint by the dispatcher;
   * this must stay above it, since several endpoints can share one origin and a stuck one must not
   * occupy the connections a healthy one on the same host needs.
   */
  connectionsPerOrigin?: number;
  /** Bytes of the response body kept for the attempt record. Default 1024. */
  excerptBytes?: number;
}

/** Beyond this many response bytes the connection is dropped instead of read to the end. */
const DISCARD_LIMIT_BYTES = 64 * 1024;

/** Where one endpoint URL sends to. */
interface Target {
  origin: string;
  path: string;
  blocked: boolean;
}

/** Why the sender itself aborts a request (its timeout, a body past the limit). */
class SenderAbort extends Error {
  readonly code = 'EHRSYNC_SENDER_ABORT';
}

/** Raised inside the connect-time lookup when the address is refused. */
class BlockedAddressError extends Error {
  readonly code = 'EHRSYNC_BLOCKED_ADDRESS';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The sender over undici. */
export class HttpSender implements Sender {
  private readonly agent: Agent;
  private readonly excerptBytes: number;
  private readonly targets = new Map<string, Target | null>();

  constructor(private readonly options: HttpSenderOptions) {
    this.excerptBytes = options.excerptBytes ?? 1024;
    const policy = options.policy;
    // Every connection resolves through this check, so a host re-pointed at an internal address
    // after registration is refused at connect time (IP literals are checked before the request).
    const lookup = (hostname: string, opts: LookupOneOptions | LookupAllOptions, cb: LookupCallback): void => {
      dnsLookup(hostname, { ...opts, all: true }, (err, addresses) => {
        if (err) return cb(err, '');
        const list = addresses as LookupAddress[];
        for (const a of list) {
          if (addressProblem(a.address, hostname, policy)) return cb(new BlockedAddressError('address refused'), '');
        }
        if ((opts as LookupAllOptions).all) return cb(null, list);
        const first = list[0];
        return first ? cb(null, first.address, first.family) : cb(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), '');
      });
    };
    this.agent = new Agent({
      connections: options.connectionsPerOrigin ?? 256,
      keepAliveTimeout: 30_000,
      pipelining: 1,
      connect: { lookup: lookup as never },
    });
  }

  async send(req: SendRequest): Promise<SendResult> {
    const started = performance.now();
    const target = this.target(req.url);
    if (target === null) return { statusCode: null, retryAfter: null, errorClass: 'network', bodyExcerpt: null, durationMs: performance.now() - started };
    if (target.blocked) return { statusCode: null, retryAfter: null, errorClass: 'blocked_address', bodyExcerpt: null, durationMs: performance.now() - started };
    return new Promise<SendResult>((resolve) => {
      const excerptBytes = this.excerptBytes;
      let controller: Dispatcher.DispatchController | null = null;
      let statusCode: number | null = null;
      let retryAfter: string | null = null;
      let tooLong = false;
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      let over = false;
      // The result is reported once (`settle`); the exchange may go on after it (`end`): the rest
      // of a body is read in the background so the connection serves the next attempt.
      const settle = (errorClass: SendResult['errorClass']): void => {
        if (settled) return;
        settled = true;
        // Once the status arrived, a body cut short (timeout, reset, too long) does not change what
        // the receiver answered: the status stands, with what arrived of the body.
        const answered = statusCode !== null;
        const excerpt = answered ? Buffer.concat(chunks).subarray(0, excerptBytes).toString('utf8').replaceAll('\u0000', '\uFFFD') : null;
        resolve({ statusCode, retryAfter: answered ? retryAfter : null, errorClass: answered ? null : errorClass, bodyExcerpt: excerpt, durationMs: performance.now() - started });
      };
      const end = (): void => {
        over = true;
        clearTimeout(timer);
      };
      // Pausing first: an abort from inside a data callback must stop undici's parser before it
      // completes the message it is parsing (it asserts a completed request was not aborted).
      const drop = (c: Dispatcher.DispatchController): void => {
        end();
        c.pause();
        c.abort(new SenderAbort('dropped by the sender'));
      };
      // One timer covers connect, headers and the body: "hang past the timeout" and "accept and
      // never answer" both end here, and so does a body still draining after the result. Before the
      // request reaches a socket there is nothing to abort: the result is reported at once, and the
      // request, still queued in undici (at most its connect timeout, 10 s), is aborted when it
      // reaches a socket, never written.
      const timer = setTimeout(() => {
        settle('timeout');
        if (controller) drop(controller);
        else over = true;
      }, req.timeoutMs);
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (over) drop(c);
        },
        onResponseStart(c, code, headers) {
          if (code < 200) return; // 1xx: informational, the answer follows
          statusCode = code;
          const ra = headers['retry-after'];
          retryAfter = Array.isArray(ra) ? (ra[0] ?? null) : (ra ?? null);
          tooLong = Number(headers['content-length']) > DISCARD_LIMIT_BYTES;
        },
        onResponseData(c, chunk) {
          if (size < excerptBytes) chunks.push(chunk);
          size += chunk.length;
          if (size < excerptBytes) return;
          // The excerpt is complete: that is the result. Reading on only keeps the connection,
          // worth it up to a limit; past it (or announced past it) the connection is dropped.
          settle(null);
          if (tooLong || size > DISCARD_LIMIT_BYTES) drop(c);
        },
        onResponseEnd() {
          end();
          settle(null);
        },
        onResponseError(_c, err) {
          end();
          settle(networkErrorClass(err));
        },
      };
      try {
        this.agent.dispatch(
          { origin: target.origin, path: target.path, method: 'POST', headers: req.headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs },
          handler,
        );
      } catch (err) {
        end();
        settle(networkErrorClass(err));
      }
    });
  }

  /** Origin and path of a URL, and whether the policy refuses it outright (its scheme, or an IP literal); parsed once per URL. */
  private target(url: string): Target | null {
    let t = this.targets.get(url);
    if (t === undefined) {
      try {
        const u = new URL(url);
        const host = u.hostname.replace(/^\[|\]$/g, '');
        const policy = this.options.policy;
        t = { origin: u.origin, path: `${u.pathname}${u.search}`, blocked: !schemeAllowed(u.protocol, policy) || (isIP(host) !== 0 && addressProblem(host, host, policy) !== null) };
      } catch {
        t = null;
      }
      // A handful of endpoint URLs per process; bounded anyway against a stream of distinct ones.
      if (this.targets.size >= 1000) this.targets.clear();
      this.targets.set(url, t);
    }
    return t;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

/** The class of a network failure, from the error codes of undici and node (looked up through `cause`). */
export function networkErrorClass(err: unknown): NetworkErrorClass {
  for (let e = err as { code?: unknown; cause?: unknown; name?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (code === 'EHRSYNC_BLOCKED_ADDRESS') return 'blocked_address';
    if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT' || e.name === 'TimeoutError') return 'timeout';
    if (code === 'ECONNREFUSED') return 'connection_refused';
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return 'connection_reset';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'dns';
    if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') return 'tls';
    if (e.name === 'HTTPParserError' || code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'invalid_response';
  }
  return 'network';
}
