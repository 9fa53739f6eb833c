/**
 * @module domain/secrets — how secrets are kept: API secrets and access tokens hashed (SHA-256:
 * they are long random tokens, so a slow hash adds nothing), webhook signing secrets encrypted
 * with AES-256-GCM under a key from configuration (they must be readable to sign), comparisons in
 * constant time. Secret values never appear in logs, errors or `toJSON`.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from './errors.js';

/** A new webhook signing secret in the Standard Webhooks format: `whsec_` + base64 of 24 random bytes. Both schemes use it (cobalt keys the HMAC with the whole string). */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** SHA-256 hex of a secret token (client secrets, access tokens). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time string comparison (different lengths compare unequal, also in constant time per length). */
export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ba.length !== bb.length) {
    timingSafeEqual(ba, ba);
    return false;
  }
  return timingSafeEqual(ba, bb);
}

/** True when `secret` hashes to `hash`, compared in constant time. */
export function verifySecret(secret: string, hash: string): boolean {
  return safeEqual(hashSecret(secret), hash);
}

const PREFIX = 'enc:v1:';

/**
 * Encrypts and decrypts secrets at rest. The stored form is `enc:v1:<iv>.<tag>.<ciphertext>`
 * (base64url parts), so a value's format says how to read it.
 */
export class SecretBox {
  // A true private field: util.inspect and console.log cannot show it.
  readonly #key: Buffer;

  /** @param key 32 bytes, given as 64 hex characters or base64/base64url. */
  constructor(key: string) {
    this.#key = SecretBox.parseKey(key);
  }

  /** A fresh random key, base64url (for `ehrsync` to print when none is configured). */
  static generateKey(): string {
    return randomBytes(32).toString('base64url');
  }

  /** Parses a configured key or throws a ConfigError naming the fix. */
  static parseKey(key: string): Buffer {
    const trimmed = key.trim();
    const buf = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64url');
    if (buf.length !== 32) {
      throw new ConfigError('encryption key must be 32 bytes (64 hex characters or 43 base64url characters); generate one with `openssl rand -hex 32`.');
    }
    return buf;
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${PREFIX}${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${ct.toString('base64url')}`;
  }

  decrypt(stored: string): string {
    if (!stored.startsWith(PREFIX)) throw new ConfigError('a stored secret is not in the encrypted format; was it written without an encryption key?');
    const [iv, tag, ct] = stored.slice(PREFIX.length).split('.');
    if (iv === undefined || tag === undefined || ct === undefined) throw new ConfigError('a stored secret is malformed.');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new ConfigError('a stored secret cannot be decrypted: the encryption key differs from the one it was written with.');
    }
  }

  /** Never print the key. */
  toJSON(): string {
    return 'SecretBox(***)';
  }
}
