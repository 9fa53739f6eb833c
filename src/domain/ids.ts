/** @module domain/ids — identifiers and secret tokens: random, unguessable, printable. */
import { createHash, randomBytes } from 'node:crypto';

/** Random bytes drawn 4 KiB at a time: one system call per 256 ids instead of one per id. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = POOL_BYTES;

/** A new random id: 32 lowercase hex characters (128 bits), the format of Cobalt's event ids. */
export function newId(): string {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const id = pool.toString('hex', poolOffset, poolOffset + 16);
  poolOffset += 16;
  return id;
}

/**
 * A stable id derived from its parts: 32 lowercase hex characters.
 * Used where the same input must always give the same id (e.g. a provider seen again on the same
 * connection) and where ids must never collide across connections (the connection id is a part).
 */
export function stableId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

/** A new secret token with a readable prefix, e.g. `cs_…` for client secrets, `whsec_…` for signing secrets. */
export function newToken(prefix: string, bytes = 24): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}
