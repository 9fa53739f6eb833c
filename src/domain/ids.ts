/** @module domain/ids — identifiers and secret tokens: random, unguessable, printable. */
import { createHash, randomBytes } from 'node:crypto';

/** A new random id: 32 lowercase hex characters (128 bits), the format of Cobalt's event ids. */
export function newId(): string {
  return randomBytes(16).toString('hex');
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
