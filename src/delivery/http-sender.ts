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
import type { NetworkErrorClass, SendResult } from './classify.js';
import type { EndpointUrlPolicy } from './url-safety.js';
import { addressProblem } from './url-safety.js';

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

/** Raised inside the connect-time lookup when the address is refused. */
class BlockedAddressError extends Error {
  readonly code = 'EHRSYNC_BLOCKED_ADDRESS';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The sender over undici. */
export class HttpSender implements Sender {
  private readonly agent: Agent;
  private readonly excerptBytes: number;

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
    const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({ ...r, durationMs: performance.now() - started });
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return done({ statusCode: null, retryAfter: null, errorClass: 'network', bodyExcerpt: null });
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && addressProblem(host, host, this.options.policy)) return done({ statusCode: null, retryAfter: null, errorClass: 'blocked_address', bodyExcerpt: null });

    const ac = new AbortController();
    let timedOut = false;
    // One timer covers connect, headers and the (truncated) body: "hang past the timeout" and
    // "accept and never answer" both end here.
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, req.timeoutMs);
    try {
      const res = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: req.headers,
        body: req.body,
        signal: ac.signal,
        headersTimeout: req.timeoutMs,
        bodyTimeout: req.timeoutMs,
      });
      const retryAfter = res.headers['retry-after'];
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          chunks.push(chunk as Buffer);
          size += (chunk as Buffer).length;
          if (size >= this.excerptBytes) break; // leaving the loop destroys the rest of the body
        }
      } catch {
        // The status arrived; a body cut short does not change what the receiver answered.
      }
      const excerpt = Buffer.concat(chunks).subarray(0, this.excerptBytes).toString('utf8').replaceAll('\u0000', '\uFFFD');
      return done({ statusCode: res.statusCode, retryAfter: Array.isArray(retryAfter) ? (retryAfter[0] ?? null) : (retryAfter ?? null), errorClass: null, bodyExcerpt: excerpt });
    } catch (err) {
      return done({ statusCode: null, retryAfter: null, errorClass: timedOut ? 'timeout' : networkErrorClass(err), bodyExcerpt: null });
    } finally {
      clearTimeout(timer);
    }
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
