/**
 * @module store/concerns/outbox — writes shared by several concerns, run inside their caller's
 * transaction: events with one delivery per subscribed endpoint (the outbox of sync commits and
 * finished operations), projection upserts, deleting events (retention and erasure), and disabling
 * an endpoint (the Endpoints port, and the delivery queue when an outcome says so).
 */
import type { EpochMs } from '../../domain/clock.js';
import type { RecordSource } from '../../domain/entities.js';
import { subscribes } from '../../domain/entities.js';
import type { StoredEventInput } from '../../domain/events.js';
import type { Projected } from '../../domain/projection.js';
import type { AppointmentRecord, PatientRecord } from '../../domain/records.js';
import { toEndpoint } from '../rows.js';
import type { SqlRunner } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';
import { all, run } from '../sql/statement.js';
import * as sql from '../statements/outbox.js';
import { disableEndpoint, skipPendingDeliveries } from '../statements/endpoints.js';

/**
 * Inserts events and, in the same transaction, one delivery per endpoint of the account that
 * subscribes to the event's type: `pending` when the endpoint is enabled, `skipped` (visible,
 * recoverable) when it is disabled.
 */
export async function insertEventsWithDeliveries(tx: SqlRunner, accountId: string, connectionId: string, events: readonly StoredEventInput[]): Promise<void> {
  if (events.length === 0) return;
  const seqById = new Map<string, number>();
  for (const st of sql.insertEvents(accountId, connectionId, events)) {
    for (const r of await all<{ seq: number; id: string }>(tx, st)) seqById.set(String(r.id), Number(r.seq));
  }
  const endpoints = (await all(tx, sql.selectFanOutEndpoints(accountId))).map(toEndpoint);
  if (endpoints.length === 0) return;
  const deliveries: sql.NewDelivery[] = [];
  for (const e of events) {
    const seq = seqById.get(e.id) as number;
    for (const ep of endpoints) {
      if (!subscribes(ep, e.type)) continue;
      deliveries.push([seq, ep.id, accountId, e.orderingKey, ep.enabled ? 'pending' : 'skipped', e.createdAt]);
    }
  }
  for (const st of sql.insertDeliveries(deliveries)) await run(tx, st);
}

/**
 * Upserts projection rows. A row keeps its id and its source (who first wrote it); its record,
 * start and update time follow the latest write.
 */
export async function upsertProjection(
  tx: SqlRunner,
  connectionId: string,
  appointments: readonly Projected<AppointmentRecord>[],
  patients: readonly Projected<PatientRecord>[],
  source: RecordSource,
  at: EpochMs,
): Promise<void> {
  for (const st of sql.upsertAppointments(connectionId, appointments, source, at)) await run(tx, st);
  for (const st of sql.upsertPatients(connectionId, patients, source, at)) await run(tx, st);
}

/** Deletes events by sequence number, with their attempts and deliveries, in batches. */
export async function deleteEvents(d: Dialect, tx: SqlRunner, seqs: readonly number[]): Promise<void> {
  for (let i = 0; i < seqs.length; i += sql.DELETE_EVENTS_CHUNK) {
    for (const st of sql.deleteEvents(d, JSON.stringify(seqs.slice(i, i + sql.DELETE_EVENTS_CHUNK)))) await run(tx, st);
  }
}

/** Marks an endpoint's pending deliveries skipped (kept and visible; `recoverEndpointDeliveries` queues them again). */
export async function skipPending(tx: SqlRunner, endpointId: string, why: string): Promise<void> {
  await run(tx, skipPendingDeliveries(endpointId, why));
}

/** Disables an endpoint inside a transaction, skipping its pending deliveries; nothing when it is disabled already. */
export async function disableIn(tx: SqlRunner, endpointId: string, reason: string, now: EpochMs): Promise<void> {
  const changed = await run(tx, disableEndpoint(endpointId, reason, now));
  if (changed > 0) await skipPending(tx, endpointId, `endpoint disabled: ${reason}`);
}
