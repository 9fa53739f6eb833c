/**
 * @module store/queue/scan-starts — per endpoint, how far into its queue the next lease's scan can skip
 * (pure; time passed in). A failing endpoint's queue fills with deliveries that cannot be leased
 * yet — waiting for a retry, or behind an earlier event of their key — ahead of the ones that can:
 * without this, every lease would read all of them again, and the healthy endpoints' deliveries
 * would wait for it. What a scan passed over is skipped until something can change it: one of
 * those deliveries' retry falling due or lease running out (whoever holds it), a change this store
 * makes (which clears the skip), or at most SCAN_SKIP_MS for what it cannot see: another
 * process's outcomes, releases, redeliveries and recoveries.
 */
import type { EpochMs } from '../../domain/clock.js';

/** Longest time a skip holds: how late a delivery freed by another process can be found. */
export const SCAN_SKIP_MS = 1000;

interface Skip {
  /** Deliveries of events before this sequence number are known not to be leasable. */
  fromSeq: number;
  /** When that was found. */
  at: EpochMs;
  /** Until then. */
  until: EpochMs;
}

/** The skips of one store. */
export class ScanStarts {
  private readonly skips = new Map<string, Skip>();
  /** Bumped by every clear: a scan that began before one does not record what it passed. */
  private generation = 0;
  /** Endpoints whose latest outcome here was a retry: their queues fill with deliveries waiting. */
  private readonly failing = new Set<string>();

  /**
   * Whether noting what a scan of `endpointId` passed is worth its statement: when the scan came
   * back short (nothing, or less than its share, so it read the rest of the queue), or when the
   * endpoint is failing. A healthy endpoint's scans pass only its requests in flight.
   */
  worthNoting(endpointId: string, short: boolean): boolean {
    return short || this.failing.has(endpointId);
  }

  /** A token for `passed`: take it when a scan begins. */
  begin(): number {
    return this.generation;
  }

  /** Where a scan of `endpointId`'s queue starts at `now`: past what is known not to be leasable, or 0. */
  from(endpointId: string, now: EpochMs): number {
    const s = this.skips.get(endpointId);
    if (s === undefined) return 0;
    // A clock that stepped back would otherwise stretch the skip by the step.
    if (now >= s.until || now < s.at) {
      this.skips.delete(endpointId);
      return 0;
    }
    return s.fromSeq;
  }

  /** The skips holding at `now`, as a JSON object {endpoint id: first event sequence to look at}. */
  json(now: EpochMs): string {
    const out: Record<string, number> = {};
    for (const id of [...this.skips.keys()]) {
      const from = this.from(id, now);
      if (from > 0) out[id] = from;
    }
    return JSON.stringify(out);
  }

  /**
   * A scan of `endpointId`'s queue, begun with token `token` from `from`, found nothing leasable
   * before `to` (the first leasable delivery's event, or past the newest event when it found none);
   * among the deliveries it passed, the first to become leasable by itself (a retry falling due,
   * a lease expiring) does so at `nextDue` (null: none will). A scan that started at an earlier
   * skip keeps that skip's deadline: what it said about the older deliveries holds no longer.
   */
  passed(token: number, endpointId: string, now: EpochMs, from: number, to: number, nextDue: EpochMs | null): void {
    if (token !== this.generation || to <= from) return;
    const earlier = from > 0 ? this.skips.get(endpointId) : undefined;
    const until = Math.min(now + SCAN_SKIP_MS, nextDue ?? Infinity, earlier?.until ?? Infinity);
    if (until <= now) return;
    this.skips.set(endpointId, { fromSeq: to, at: now, until });
  }

  /** One of `endpointId`'s deliveries waits for a retry due at `at`: scan from the start by then. */
  retryAt(endpointId: string, at: EpochMs): void {
    this.failing.add(endpointId);
    const s = this.skips.get(endpointId);
    if (s !== undefined && at < s.until) s.until = at;
  }

  /** A delivery of `endpointId` is done (an event of a key finished): older ones may now be leasable. */
  done(endpointId: string): void {
    this.failing.delete(endpointId);
    this.forget(endpointId);
  }

  /** Something may have made older deliveries of `endpointId` leasable. */
  forget(endpointId: string): void {
    this.generation++;
    this.skips.delete(endpointId);
  }

  /** Same, for every endpoint (leases released, a redelivery, an erasure, an endpoint changed). */
  forgetAll(): void {
    this.generation++;
    this.skips.clear();
  }
}
