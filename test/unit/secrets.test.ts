/** Secrets at rest: hashing, constant-time checks, encryption round trip and wrong-key failure. */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { it } from 'node:test';
import { ConfigError } from '../../src/domain/errors.js';
import { hashSecret, SecretBox, safeEqual, verifySecret } from '../../src/domain/secrets.js';

it('hashes and verifies tokens', () => {
  const h = hashSecret('cs_live_abc');
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.ok(verifySecret('cs_live_abc', h));
  assert.ok(!verifySecret('cs_live_abd', h));
  assert.ok(safeEqual('x', 'x') && !safeEqual('x', 'xy'));
});

it('encrypts signing secrets so only the same key reads them', () => {
  const key = SecretBox.generateKey();
  const box = new SecretBox(key);
  const stored = box.encrypt('whsec_topsecret');
  assert.match(stored, /^enc:v1:/);
  assert.ok(!stored.includes('topsecret'));
  assert.notEqual(box.encrypt('whsec_topsecret'), stored, 'a fresh IV each time');
  assert.equal(box.decrypt(stored), 'whsec_topsecret');
  assert.throws(() => new SecretBox(SecretBox.generateKey()).decrypt(stored), ConfigError);
  assert.throws(() => new SecretBox('too-short'), /32 bytes/);
  const keyHex = Buffer.from(key, 'base64url').toString('hex').slice(0, 8);
  assert.ok(!inspect(box, { showHidden: true }).includes(keyHex), 'inspect does not show the key');
  assert.equal(JSON.stringify({ box }), '{"box":"SecretBox(***)"}');
});
