/** Filling the outbox for delivery tests: hand-made events with chosen ordering keys, committed as a sync would. */
import type { StoredEventInput } from '../../src/domain/events.js';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';
import { planSync } from '../../src/detection/plan.js';
import type { SyncPlan } from '../../src/domain/projection.js';
import type { Store } from '../../src/store/ports.js';

let counter = 0;

/** A sync plan with no changes, for callers that put their own hand-made events into it. */
export function emptyPlan(connectionId: string, now: number, referenceId: string): SyncPlan {
  return planSync({
    connection: { id: connectionId, referenceId, timezone: 'UTC', statusMap: DEFAULT_STATUS_MAP },
    now,
    baseline: null,
    projection: { appointments: new Map(), patients: new Map() },
    providers: new Map(),
    appointmentReads: [],
    patientReads: [],
    seenProviders: [],
    goneAppointmentIds: [],
    connectorQuarantine: [],
    newId: () => 'unused',
  });
}

/** Commits `appointment.updated` events with these ordering keys, in order; returns their ids. */
export async function emitEvents(store: Store, connectionId: string, keys: readonly string[], createdAt: number): Promise<string[]> {
  const plan = emptyPlan(connectionId, createdAt, 'clinic_1');
  const events: StoredEventInput[] = keys.map((key, i) => {
    const id = `${process.pid.toString(16).padStart(8, '0')}${(++counter).toString(16).padStart(24, '0')}`;
    const body = JSON.stringify({
      id,
      access_token_reference_id: 'clinic_1',
      object: 'event',
      created: new Date(createdAt).toISOString(),
      type: 'appointment.updated',
      data: { id: key, n: i, patient_name: 'Zoë “Test” Ünïcode \u2028', updated_fields: { status: '2' } },
    });
    return { id, type: 'appointment.updated', orderingKey: key, jobId: null, patientEhrId: null, createdAt, body };
  });
  const run = await store.startSyncRun(connectionId, createdAt);
  await store.commitSync({ runId: run.id, connectionId, plan: { ...plan, events }, finishedAt: createdAt, baselineDone: true, nextSyncAt: createdAt });
  return events.map((e) => e.id);
}
