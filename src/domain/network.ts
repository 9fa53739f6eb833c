/**
 * @module domain/network — which network addresses a webhook may target. Private, loopback,
 * link-local and other non-global addresses are refused (SSRF: an endpoint URL must not reach
 * the inside of the network ehrsync runs in) unless explicitly allowed.
 */
import { BlockList, isIP } from 'node:net';

const NON_GLOBAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_GLOBAL.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['64:ff9b::', 96],
] as const) {
  NON_GLOBAL.addSubnet(net, prefix, 'ipv6');
}

/** True for an IP literal that is not globally routable (private, loopback, link-local, ...). */
export function isNonGlobalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    // IPv4-mapped IPv6 (::ffff:10.0.0.1) is judged as the IPv4 address it carries.
    const unmapped = unmapIpv4(address);
    return unmapped === address ? NON_GLOBAL.check(address, 'ipv6') : NON_GLOBAL.check(unmapped, 'ipv4');
  }
  return NON_GLOBAL.check(address, 'ipv4');
}

/** `::ffff:10.0.0.1` → `10.0.0.1` (dual-stack sockets report IPv4 peers that way); any other address as it is. */
export function unmapIpv4(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? (mapped[1] as string) : address;
}

/** True for loopback addresses (allowed in the explicit dev mode). */
export function isLoopbackAddress(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}
