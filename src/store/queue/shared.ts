/**
 * @module store/queue/shared — the parts of the delivery queue both dialects run the same way: the
 * lease quota (which endpoints have room, split fairly), recording outcomes in one general
 * transaction, and giving leases back.
 */
import type { DeliveryOutcome } from '../../domain/delivery.js';
import type { LeaseRequest } from '../ports.js';
import type { SqlRunner } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';
import { all, run } from '../sql/statement.js';
import { quotaCandidates, releaseLeases } from '../statements/delivery-queue.js';
import { foldEndpointHealth, outcomeStatements } from '../statements/outcomes.js';
import { disableIn } from '../concerns/outbox.js';
import type { SqlContext } from '../concerns/context.js';
import { planLease } from './lease-plan.js';

/**
 * Steps 1–2 of a lease: the enabled endpoints with a due, unleased delivery and their free slots
 * (cap − leased, or cap − the owner's exact in-flight count − other owners' leases), split into fair
 * shares of the batch (round robin across accounts, then endpoints). `scanStarts` as in
 * statements/delivery-queue.ts `quotaCandidates`.
 */
export async function leaseQuota(db: SqlRunner, d: Dialect, q: LeaseRequest, scanStarts: string): Promise<Map<string, number>> {
  const own = q.ownInFlight;
  const groups = await all<{ endpoint_id: string; account_id: string; cap: number; busy: number }>(db, quotaCandidates(d, q, scanStarts));
  return planLease(
    groups.map((g) => {
      const endpointId = String(g.endpoint_id);
      const cap = q.oneAtATime?.has(endpointId) ? 1 : Number(g.cap);
      return { endpointId, accountId: String(g.account_id), room: cap - Number(g.busy) - (own?.get(endpointId) ?? 0) };
    }),
    q.limit,
  );
}

/**
 * Records attempts and their consequences (delivery status, endpoint health, disabling) in one
 * transaction. `beforeCommit` runs inside it, after the writes.
 */
export async function recordOutcomes(ctx: SqlContext, outcomes: readonly DeliveryOutcome[], beforeCommit?: () => void): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const health = foldEndpointHealth(outcomes);
    for (const st of outcomeStatements(ctx.d, outcomes, health)) await run(tx, st);
    for (const h of health) if (h.disable) await disableIn(tx, h.endpointId, h.disable.reason, h.disable.at);
    beforeCommit?.();
  });
}

/** Gives back leases not attempted (graceful stop), uncounting the attempt; a change that frees deliveries. */
export async function releaseDeliveryLeases(ctx: SqlContext, owner: string, deliveryIds?: readonly number[]): Promise<void> {
  await ctx.queue.freeing(async (tx) => {
    if (deliveryIds === undefined || deliveryIds.length > 0) await run(tx, releaseLeases(ctx.d, owner, deliveryIds));
  });
}
