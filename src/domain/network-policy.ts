/**
 * @module domain/network-policy — where ehrsync may connect: webhook endpoints and the EHR
 * addresses a tenant sets (base URL, token URL). One set of rules for both checks: when an address
 * is set (the API: https, no credentials, a host resolving only to global addresses unless the dev
 * mode or an allow-list says otherwise) and at connect time (the webhook sender: DNS can change
 * after registration, so every connection's address is checked again).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isLoopbackAddress, isNonGlobalAddress } from './network.js';

/** What endpoint URLs may be. */
export interface EndpointUrlPolicy {
  /** Dev mode (`EHRSYNC_ALLOW_INSECURE_ENDPOINTS=1`): http and loopback targets are allowed. */
  allowInsecure: boolean;
  /** Host names allowed whatever they resolve to (e.g. an internal receiver you run yourself). */
  allowHosts: readonly string[];
  /** Allow every private or loopback address (tests, receivers on a closed network). Default false. */
  allowPrivate?: boolean;
}

/**
 * Whether a URL scheme may carry webhooks under `policy`: https always; http only in dev mode (or
 * where every private address is allowed: tests). Checked at registration and again by the sender,
 * so an http endpoint registered in dev mode gets nothing once dev mode is off.
 */
export function schemeAllowed(protocol: string, policy: EndpointUrlPolicy): boolean {
  return protocol === 'https:' || (protocol === 'http:' && (policy.allowInsecure || policy.allowPrivate === true));
}

/** Why a connection to `address` (for `host`) is refused under `policy`, or null when it is allowed. */
export function addressProblem(address: string, host: string, policy: EndpointUrlPolicy): string | null {
  if (policy.allowPrivate || policy.allowHosts.includes(host.toLowerCase())) return null;
  if (!isNonGlobalAddress(address)) return null;
  if (policy.allowInsecure && isLoopbackAddress(address)) return null;
  return `host ${JSON.stringify(host)} resolves to a private, loopback or link-local address (${address}); such targets are refused unless allow-listed.`;
}

/** Resolves a host to its addresses (injected in tests). */
export type Resolve = (host: string) => Promise<string[]>;

const defaultResolve: Resolve = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Returns why `raw` is not an acceptable endpoint URL, or null when it is; `field` names it in the message. */
export async function endpointUrlProblem(raw: string, policy: EndpointUrlPolicy, resolve: Resolve = defaultResolve, field = 'webhook_url'): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `${field} is not a valid URL: ${JSON.stringify(raw.slice(0, 200))}`;
  }
  if (!schemeAllowed(url.protocol, policy)) {
    return policy.allowInsecure ? `${field} must use http or https.` : `${field} must use https (http is allowed only with EHRSYNC_ALLOW_INSECURE_ENDPOINTS=1, for development).`;
  }
  if (url.username || url.password) return `${field} must not contain credentials${field === 'webhook_url' ? '; authenticate receivers with the signature instead' : ''}.`;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (policy.allowHosts.includes(host.toLowerCase())) return null;
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await resolve(host);
  } catch {
    return `${field} host ${JSON.stringify(host)} does not resolve.`;
  }
  for (const address of addresses) {
    const problem = addressProblem(address, host, policy);
    if (problem) return `${field} ${problem}`;
  }
  return null;
}
