/**
 * @module store/scan-starts — per endpoint, how far into its queue the next lease's scan can skip
 * (pure; time passed in). A failing endpoint's queue fills with deliveries that cannot be leased
 * yet — waiting for a retry, or behind an earlier event of their key — ahead of the ones that can:
 * without this, every lease would read all of them again, and the healthy endpoints' deliveries
 * would wait for it. What a scan passed over is skipped until something can change it: a retry
 * falling due, an outcome or redelivery this store records (which clears the skip), or at most
 * SCAN_SKIP_MS for what it cannot see (a lease of another process expiring).
 */
import type { EpochMs } from '../domain/clock.js';

/** Longest time a skip holds: how late a delivery made leasable by another process can be found. */
export const SCAN_SKIP_MS = 1000;

interface Skip {
  /** Deliveries of events before this sequence number are known not to be leasable. */
  fromSeq: number;
  /** Until then. */
  until: EpochMs;
}

/** The skips of one store. */
export class ScanStarts {
  private readonly skips = new Map<string, Skip>();

  /** Where a scan of `endpointId`'s queue starts at `now`: past what is known not to be leasable, or 0. */
  from(endpointId: string, now: EpochMs): number {
    const s = this.skips.get(endpointId);
    if (s === undefined) return 0;
    if (now >= s.until) {
      this.skips.delete(endpointId);
      return 0;
    }
    return s.fromSeq;
  }

  /** The skips holding at `now`, as rows for a statement's JSON parameter. */
  rows(now: EpochMs): { endpoint_id: string; from_seq: number }[] {
    const out: { endpoint_id: string; from_seq: number }[] = [];
    for (const id of [...this.skips.keys()]) {
      const from = this.from(id, now);
      if (from > 0) out.push({ endpoint_id: id, from_seq: from });
    }
    return out;
  }

  /**
   * A scan of `endpointId`'s queue from `from` found nothing leasable before `to` (the first
   * leasable delivery's event, or past the newest event when it found none); among the deliveries
   * it passed, the earliest retry falls due at `nextDue` (null: none waits for one). A scan that
   * started at an earlier skip keeps that skip's deadline: what it said about the older
   * deliveries holds no longer than it did.
   */
  passed(endpointId: string, now: EpochMs, from: number, to: number, nextDue: EpochMs | null): void {
    if (to <= from) return;
    const earlier = from > 0 ? this.skips.get(endpointId) : undefined;
    const until = Math.min(now + SCAN_SKIP_MS, nextDue ?? Infinity, earlier?.until ?? Infinity);
    if (until <= now) return;
    this.skips.set(endpointId, { fromSeq: to, until });
  }

  /** One of `endpointId`'s deliveries waits for a retry due at `at`: scan from the start by then. */
  retryAt(endpointId: string, at: EpochMs): void {
    const s = this.skips.get(endpointId);
    if (s !== undefined && at < s.until) s.until = at;
  }

  /** Something may have made older deliveries of `endpointId` leasable (an event of a key done). */
  forget(endpointId: string): void {
    this.skips.delete(endpointId);
  }

  /** Same, for every endpoint (leases released, a redelivery, an endpoint changed). */
  forgetAll(): void {
    this.skips.clear();
  }
}
