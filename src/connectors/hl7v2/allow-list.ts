/** @module connectors/hl7v2/allow-list — source-address allow-lists (IPs and CIDR ranges), for the listener and per connection. */
import { BlockList, isIP } from 'node:net';
import { ConfigError } from '../../domain/errors.js';
import { unmapIpv4 } from '../../domain/network.js';

/**
 * Parses a list of IP addresses and CIDR ranges (`10.1.2.3`, `10.1.0.0/16`, `::1`). Throws
 * ConfigError naming `field` for an empty list or an entry that is neither.
 */
export function parseAllowList(entries: readonly string[], field: string): BlockList {
  if (!Array.isArray(entries) || entries.length === 0) throw new ConfigError(`${field}: list at least one address or CIDR range, or omit it to allow any source.`);
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', prefix, extra] = String(entry).trim().split('/');
    const address = unmapIpv4(addr);
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
      throw new ConfigError(`${field}: "${String(entry).slice(0, 60)}" is not an IP address or CIDR range (e.g. 10.1.2.3 or 10.1.0.0/16).`);
    }
    list.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** True when `address` (IPv4-mapped IPv6 read as IPv4) is in the list. */
export function isAllowed(list: BlockList, address: string): boolean {
  const a = unmapIpv4(address);
  const family = isIP(a);
  return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}
