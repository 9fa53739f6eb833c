/** The error catalogue and docs/errors.md list the same codes with the same status and retry flag. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { MLLP_ERROR_CODES } from '../../src/connectors/hl7v2/mllp-framer.js';
import { ERROR_CODES } from '../../src/domain/errors.js';

it('docs/errors.md documents every error code, and only those, with the same status and retryable flag', () => {
  const md = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...md.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (yes|no) \|/gm)].map((m) => [m[1], Number(m[2]), m[3] === 'yes']);
  const catalogue = Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status, e.retryable]);
  assert.deepEqual(rows.sort(), catalogue.sort());
});

it('docs/errors.md documents every MLLP listener code with the same retryable flag (the client-only codes excepted)', () => {
  const md = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const section = md.slice(md.indexOf('## MLLP listener'));
  const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (yes|no) \|/gm)].map((m) => [m[1], m[2] === 'yes']);
  const clientOnly = new Set(['connect_failed', 'ack_timeout', 'connection_closed']);
  const catalogue = Object.entries(MLLP_ERROR_CODES)
    .filter(([code]) => !clientOnly.has(code))
    .map(([code, e]) => [code, e.retryable]);
  assert.deepEqual(rows.sort(), catalogue.sort());
});
