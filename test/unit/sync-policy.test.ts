/** Sync decisions: which missing appointments a sync reads directly. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { directReadTurn } from '../../src/sync/sync-policy.js';

it('reads every missing appointment when they fit; otherwise a window that moves, so each is read within a few syncs', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  assert.deepEqual(directReadTurn(ids, 10, 0.7), ids);
  assert.deepEqual(directReadTurn(ids, 2, 0), ['a', 'b']);
  assert.deepEqual(directReadTurn(ids, 2, 0.9), ['e', 'a'], 'wraps around');
  const seen = new Set<string>();
  for (const r of [0, 0.2, 0.4, 0.6, 0.8]) for (const id of directReadTurn(ids, 2, r)) seen.add(id);
  assert.deepEqual([...seen].sort(), ids, 'over syncs, none is left out');
});
