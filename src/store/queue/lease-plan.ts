/** @module store/queue/lease-plan — how many deliveries to lease per endpoint: fair shares under the caps (pure). */

/** An endpoint with due deliveries and free slots under its in-flight cap. */
export interface LeaseCandidate {
  endpointId: string;
  accountId: string;
  room: number;
}

/**
 * Splits `limit` lease slots round robin: one slot per account per turn, and within an account one
 * per endpoint per turn, never beyond an endpoint's room. So one tenant's backlog, or one
 * endpoint's, cannot crowd out the others. Ties go by id, so the plan is deterministic.
 */
export function planLease(candidates: readonly LeaseCandidate[], limit: number): Map<string, number> {
  const quota = new Map<string, number>();
  const byAccount = new Map<string, LeaseCandidate[]>();
  for (const c of [...candidates].sort((a, b) => a.endpointId.localeCompare(b.endpointId))) {
    if (c.room <= 0) continue;
    byAccount.set(c.accountId, [...(byAccount.get(c.accountId) ?? []), c]);
  }
  const accounts = [...byAccount.keys()].sort();
  const cursor = new Map<string, number>();
  let left = limit;
  let progress = true;
  while (left > 0 && progress) {
    progress = false;
    for (const a of accounts) {
      if (left === 0) break;
      const eps = byAccount.get(a) as LeaseCandidate[];
      // The account's next endpoint that still has room, starting where its last turn stopped.
      for (let tries = 0; tries < eps.length; tries++) {
        const i = ((cursor.get(a) ?? 0) + tries) % eps.length;
        const ep = eps[i] as LeaseCandidate;
        const used = quota.get(ep.endpointId) ?? 0;
        if (used >= ep.room) continue;
        quota.set(ep.endpointId, used + 1);
        cursor.set(a, i + 1);
        left--;
        progress = true;
        break;
      }
    }
  }
  return quota;
}
