/**
 * @module store/queue/sqlite-queue — the delivery queue on SQLite. One process owns the database,
 * so the lease runs as a short transaction of several statements under the single writer, and the
 * queue keeps in-process scan starts (queue/scan-starts.ts): what earlier scans of a failing
 * endpoint's queue passed over is not read again until something can change it.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { DeliveryOutcome, LeasedDelivery } from '../../domain/delivery.js';
import type { Endpoint } from '../../domain/entities.js';
import type { DeliveryQueue, LeaseRequest } from '../ports.js';
import { toEndpoint, toLeased } from '../rows.js';
import type { SqlClient, SqlRunner } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';
import { all } from '../sql/statement.js';
import { dueHeads, endpointsById, eventBodies, passedScans, takeLeases } from '../statements/delivery-queue.js';
import type { QueueHooks, SqlContext } from '../concerns/context.js';
import { DueSignal } from './due-signal.js';
import { ScanStarts } from './scan-starts.js';
import { leaseQuota, recordOutcomes, releaseDeliveryLeases } from './shared.js';

/** One endpoint's scan in a lease: where it started, its share, what it found and the first of it. */
interface Scan {
  endpointId: string;
  from: number;
  asked: number;
  got: number;
  /** The event of the first leasable delivery found; null when none was. */
  first: number | null;
}

/** The SQLite delivery queue; also the hooks the rest of the store calls (QueueHooks). */
export class SqliteDeliveryQueue implements DeliveryQueue, QueueHooks {
  private readonly scanStarts = new ScanStarts();
  private readonly due: DueSignal;
  private readonly ctx: SqlContext;

  constructor(
    private readonly db: SqlClient,
    private readonly d: Dialect,
  ) {
    this.due = new DueSignal(db);
    this.ctx = { db, d, queue: this };
  }

  async leaseDeliveries(q: LeaseRequest): Promise<LeasedDelivery[]> {
    if (q.limit <= 0) return [];
    const leased = await this.db.transaction(async (tx) => {
      // 1–2. Which endpoints have room, and their shares (only deliveries past a scan start count).
      const quota = await leaseQuota(tx, this.d, q, this.scanStarts.json(q.now));
      // 3. Per endpoint, its share of due deliveries heading their ordering key, from its scan start.
      const ids: number[] = [];
      const token = this.scanStarts.begin();
      const scans: Scan[] = [];
      for (const [endpointId, n] of quota) {
        const from = this.scanStarts.from(endpointId, q.now);
        const rows = await all<{ id: number; event_seq: number }>(tx, dueHeads(this.d, endpointId, from, n, q.now));
        for (const r of rows) ids.push(Number(r.id));
        scans.push({ endpointId, from, asked: n, got: rows.length, first: rows[0] === undefined ? null : Number(rows[0].event_seq) });
      }
      await this.notePassed(tx, token, q.now, scans);
      if (ids.length === 0) return [];
      // 4. Take the leases, re-checking each row.
      const taken = await all(tx, takeLeases(this.d, ids, q));
      if (taken.length === 0) return [];
      // 5. The events' ids and bytes and the endpoints, by primary key.
      const events = new Map(
        (await all<{ seq: number; id: string; body: string; created_at: number }>(tx, eventBodies(this.d, [...new Set(taken.map((r) => Number(r.event_seq)))]))).map(
          (e) => [Number(e.seq), e] as const,
        ),
      );
      const endpoints = new Map(
        (await all(tx, endpointsById(this.d, [...new Set(taken.map((r) => String(r.endpoint_id)))]))).map((r) => {
          const e = toEndpoint(r);
          return [e.id, e] as const;
        }),
      );
      return taken.map((r) => {
        const e = events.get(Number(r.event_seq)) as { id: string; body: string; created_at: number };
        return toLeased({ ...r, event_id: e.id, event_body: e.body, event_created_at: e.created_at }, endpoints.get(String(r.endpoint_id)) as Endpoint);
      });
      // A lease is a hint, not a fact: losing it in a power loss only means the delivery is leased
      // again (at-least-once holds; the attempt row is the record). So no fsync for it.
    }, { durable: false });
    return leased.sort((a, b) => a.delivery.eventSeq - b.delivery.eventSeq);
  }

  /**
   * After a lease's scans of endpoints' queues (each from its scan start, its first leasable
   * delivery of event `first`, or none: then everything up to the newest event stored was passed):
   * the next scans skip what these passed, until the first of it can become leasable by itself —
   * a retry falling due, a lease running out (say, one whose outcome could not be recorded). One
   * statement for all the scans worth noting (see ScanStarts.worthNoting), none when there are none.
   */
  private async notePassed(tx: SqlRunner, token: number, now: EpochMs, scans: readonly Scan[]): Promise<void> {
    const worth = scans.filter((x) => (x.first === null || x.first > x.from) && this.scanStarts.worthNoting(x.endpointId, x.got < x.asked));
    if (worth.length === 0) return;
    // Per scan, in one pass over its range, the pending deliveries it passed: blocked, waiting for a
    // retry, or leased (the last two become leasable by themselves, at a time the skip must not
    // outlast). None: no skip. A scan that found nothing passed everything up to the newest event.
    const rows = await all<{ endpoint_id: string; from_seq: number; to_seq: number | null; passed: number; next_due: number | null }>(
      tx,
      passedScans(this.d, now, worth.map((x) => ({ endpoint_id: x.endpointId, from_seq: x.from, to_seq: x.first }))),
    );
    for (const r of rows) {
      if (Number(r.passed) === 0 || r.to_seq === null) continue;
      this.scanStarts.passed(token, String(r.endpoint_id), now, Number(r.from_seq), Number(r.to_seq), r.next_due === null ? null : Number(r.next_due));
    }
  }

  async recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    // Before the commit: a lease waiting for the writer lock must not scan with the old skips.
    await recordOutcomes(this.ctx, outcomes, () => this.outcomesRecorded(outcomes));
  }

  /**
   * Scan starts after outcomes: a final one may let the next event of its key go (the endpoint's
   * skip is forgotten), a retry falls due at its time (the skip holds no longer than that).
   */
  private outcomesRecorded(outcomes: readonly DeliveryOutcome[]): void {
    for (const o of outcomes) {
      if (o.result === 'retry' && o.nextAttemptAt !== undefined) this.scanStarts.retryAt(o.endpointId, o.nextAttemptAt);
      else this.scanStarts.done(o.endpointId);
    }
  }

  releaseDeliveryLeases(owner: string, deliveryIds?: readonly number[]): Promise<void> {
    return releaseDeliveryLeases(this.ctx, owner, deliveryIds);
  }

  onDeliveriesDue(listener: () => void): () => void {
    return this.due.subscribe(listener);
  }

  freeing<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const result = await fn(tx);
      this.scanStarts.forgetAll();
      return result;
    });
  }

  forgetScans(): void {
    this.scanStarts.forgetAll();
  }

  notifyDue(): void {
    this.due.notify();
  }

  /** Stops listening for other processes' notifications. */
  close(): Promise<void> {
    return this.due.close();
  }
}
