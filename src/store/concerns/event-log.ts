/**
 * @module store/concerns/event-log — the EventLog port in SQL: stored events with their deliveries
 * and attempts, and queuing events again (redelivery of one event, recovery of an endpoint).
 */
import type { EpochMs } from '../../domain/clock.js';
import type { AttemptRow, DeliveryRow, DeliveryStatus } from '../../domain/delivery.js';
import type { EventRow } from '../../domain/entities.js';
import { subscribes } from '../../domain/entities.js';
import type { EventType } from '../../domain/events.js';
import type { EventDeliveryFilter, EventDeliveryRow, EventLog, EventQuery } from '../ports.js';
import { toAttempt, toDelivery, toEndpoint, toEvent } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import * as sql from '../statements/event-log.js';
import type { SqlContext } from './context.js';

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** The event log over SQL. */
export class SqlEventLog implements EventLog {
  constructor(private readonly ctx: SqlContext) {}

  async listEvents(q: EventQuery): Promise<EventRow[]> {
    return (await all(this.ctx.db, sql.selectEvents(q))).map(toEvent);
  }

  async getEvent(id: string): Promise<EventRow | null> {
    const r = await one(this.ctx.db, sql.selectEvent(id));
    return r ? toEvent(r) : null;
  }

  async listDeliveries(eventId: string): Promise<DeliveryRow[]> {
    return (await all(this.ctx.db, sql.selectEventDeliveries(eventId))).map(toDelivery);
  }

  async listEventDeliveries(f: EventDeliveryFilter): Promise<{ rows: EventDeliveryRow[]; total: number }> {
    const { count, page } = sql.eventDeliveryPage(f);
    const n = await one<{ n: number }>(this.ctx.db, count);
    const rows = await all(this.ctx.db, page);
    return {
      total: Number(n?.n ?? 0),
      rows: rows.map((r) => ({
        event: toEvent(r),
        deliveryId: numOrNull(r.delivery_id),
        endpointId: strOrNull(r.delivery_endpoint_id),
        endpointUrl: strOrNull(r.endpoint_url),
        deliveryStatus: strOrNull(r.delivery_status) as DeliveryStatus | null,
        attempts: Number(r.delivery_attempts ?? 0),
        lastStatusCode: numOrNull(r.delivery_last_status_code),
      })),
    };
  }

  async listAttempts(eventId: string, endpointId?: string): Promise<AttemptRow[]> {
    return (await all(this.ctx.db, sql.selectAttempts(eventId, endpointId))).map(toAttempt);
  }

  async redeliverEvent(eventId: string, now: EpochMs, endpointId?: string): Promise<number | null> {
    const queued = await this.ctx.queue.freeing(async (tx) => {
      const ev = await one<{ seq: number; account_id: string; type: string; ordering_key: string }>(tx, sql.lockEvent(this.ctx.d, eventId));
      if (!ev) return null;
      const endpoints = (await all(tx, sql.selectEnabledEndpoints(ev.account_id)))
        .map(toEndpoint)
        .filter((e) => (endpointId === undefined ? subscribes(e, ev.type as EventType) : e.id === endpointId));
      let n = 0;
      for (const e of endpoints) {
        const changed = await run(tx, sql.requeueEventDelivery(ev.seq, e.id, now));
        if (changed > 0) {
          n += changed;
          continue;
        }
        if (await one(tx, sql.selectDeliveryOf(ev.seq, e.id))) continue; // pending and due or in flight: it goes anyway
        await run(tx, sql.insertDelivery(ev, e.id, now));
        n++;
      }
      return n;
    });
    if (queued) this.ctx.queue.notifyDue();
    return queued;
  }

  async recoverEndpointDeliveries(endpointId: string, since: EpochMs, now: EpochMs): Promise<number> {
    const n = await this.ctx.queue.freeing((tx) => run(tx, sql.recoverDeliveries(endpointId, since, now)));
    if (n > 0) this.ctx.queue.notifyDue();
    return n;
  }

  async countEndpointDeliveries(endpointId: string, range: { createdFrom: EpochMs; createdTo: EpochMs; finishedFrom: EpochMs }): Promise<Record<DeliveryStatus, number>> {
    const rows = await all<{ status: string; n: number }>(this.ctx.db, sql.countDeliveries(endpointId, range));
    const counts: Record<DeliveryStatus, number> = { pending: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const row of rows) counts[row.status as DeliveryStatus] = Number(row.n);
    return counts;
  }
}
