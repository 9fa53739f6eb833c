/** The lease plan: fair shares across accounts, then endpoints, within each endpoint's room. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { planLease } from '../../src/store/queue/lease-plan.js';

it('splits a batch round robin across accounts, then endpoints, never beyond room', () => {
  const plan = planLease(
    [
      { endpointId: 'a1', accountId: 'A', room: 50 },
      { endpointId: 'a2', accountId: 'A', room: 50 },
      { endpointId: 'b1', accountId: 'B', room: 1 },
      { endpointId: 'c1', accountId: 'C', room: 0 },
    ],
    6,
  );
  assert.deepEqual(Object.fromEntries(plan), { a1: 3, a2: 2, b1: 1 }, 'B gets its one slot although A has 100 free');
  assert.deepEqual(Object.fromEntries(planLease([{ endpointId: 'x', accountId: 'X', room: 3 }], 10)), { x: 3 });
  assert.deepEqual(planLease([], 10).size, 0);
  const many = planLease(Array.from({ length: 10 }, (_, i) => ({ endpointId: `e${i}`, accountId: `acct${i}`, room: 8 })), 5);
  assert.equal([...many.values()].reduce((a, b) => a + b, 0), 5);
  assert.ok([...many.values()].every((n) => n === 1));
});
