/** The CLI's human-readable lists: a header line, columns aligned to their widest cell. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { table } from '../../src/cli/commands/admin.js';

test('table: a header, columns padded to the widest cell, no trailing spaces', () => {
  const out = table(['ID', 'CONNECTOR', 'FAILURES'], [['b370', 'demo', '0'], ['a1', 'fhir-r4', '12']]);
  assert.equal(out, ['ID    CONNECTOR  FAILURES', 'b370  demo       0', 'a1    fhir-r4    12'].join('\n'));
  assert.ok(out.split('\n').every((line) => line === line.trimEnd()));
});
