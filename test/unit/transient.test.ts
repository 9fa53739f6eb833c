/** Which database errors the dispatcher retries recording after (store/transient.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTransientDbError } from '../../src/store/transient.js';

const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

test('connection loss, restarts, deadlocks, serialization failures and a busy SQLite are transient', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', '08006', '08001', '57P01', '40P01', '40001', '53300', 'SQLITE_BUSY']) assert.equal(isTransientDbError(withCode(code)), true, code);
  assert.equal(isTransientDbError(new Error('Connection terminated unexpectedly')), true);
});

test('constraint violations, syntax errors and bugs are not', () => {
  for (const code of ['23503', '23505', '42601', 'SQLITE_CONSTRAINT_FOREIGNKEY', 'SQLITE_ERROR']) assert.equal(isTransientDbError(withCode(code)), false, code);
  assert.equal(isTransientDbError(new TypeError('cannot read properties of undefined')), false);
  assert.equal(isTransientDbError(null), false);
});
