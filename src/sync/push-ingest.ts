/**
 * @module sync/push-ingest — applies pushed changes (HL7 v2 messages) to the projection: plans each
 * with detection/push-plan.ts and commits it with its events and deliveries, then answers. One
 * writer per process takes whatever has queued while the previous commit ran and commits it in one
 * transaction (group commit), so twenty senders share a commit instead of queueing for twenty.
 *
 * Within a batch, messages are planned in arrival order against the projection as the earlier
 * ones leave it, so two messages about one record in one batch are applied one after the other.
 * A batch that meets a concurrent write (ConflictError) is planned again from fresh reads.
 */
import type { Clock, EpochMs } from '../domain/clock.js';
import { ConflictError, safeErrorCode } from '../domain/errors.js';
import { newId as defaultNewId } from '../domain/ids.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { Connection } from '../domain/entities.js';
import type { QuarantineItem, ProviderRecord } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import type { PushedChange } from '../detection/push-plan.js';
import { emptyPlan, overlay, planPush, recordTimeKey } from '../detection/push-plan.js';
import { reasonProblems, storableId } from '../detection/validate.js';
import type { FeedMessage, PushCommit, PushCommits, PushSlice } from '../store/ports.js';
import { isTransientDbError } from '../store/transient.js';

/** One message to apply. */
export interface PushRequest {
  connection: Connection;
  /** The connection's effective status map. */
  statusMap: StatusMap;
  /** What the message changes; null when it changes nothing (unsupported, or unmappable: see `quarantine`). */
  change: PushedChange | null;
  /** Set aside before planning (a message that could not be mapped), with the reason. */
  quarantine: readonly QuarantineItem[];
  /** Where each record field comes from in the pushed message (e.g. `datetime` → `SCH-11.4 …`): named in quarantine reasons. */
  sourceFields?: Readonly<Record<string, string>>;
  /** The log entry's identity (its `messageTimeMs` is MSH-7 as written, for recognising a re-send); its outcome and acknowledgment are decided here. */
  message: Pick<FeedMessage, 'sender' | 'controlId' | 'messageType' | 'messageTimeMs' | 'receivedAt'>;
  /** The time that orders this message against others about the same records (MSH-7 in the connection's zone), or null: applied as the newest. */
  orderTimeMs: EpochMs | null;
}

/** What became of a message. */
export interface PushResult {
  outcome: FeedMessage['outcome'];
  ackCode: FeedMessage['ackCode'];
  /** For AE: why, by field name (never a value). */
  errorText: string | null;
  /** Events committed for it. */
  events: number;
  /** True when another process logged the same message first: nothing new was committed. */
  duplicate: boolean;
}

/** What the ingest needs. */
export interface PushIngestDeps {
  store: PushCommits;
  clock: Clock;
  logger?: Logger;
  newId?: () => string;
  /** Most messages committed in one transaction. Default 256. */
  maxBatch?: number;
  /** Times a batch is planned again after a concurrent write or a transient database error, before its messages fail. Default 5. */
  maxConflictRetries?: number;
}

interface Pending {
  req: PushRequest;
  resolve: (r: PushResult) => void;
  reject: (err: unknown) => void;
}

/** The keys of a change's records in the projection. */
function keysOf(change: PushedChange | null): { appointmentEhrIds: string[]; patientEhrIds: string[]; patientMrns: string[] } {
  // Only ids the stores can hold are looked up: a record with another fails validation anyway.
  const id = (v: unknown): string[] => {
    const ok = storableId(v);
    return ok === null ? [] : [ok];
  };
  if (change === null) return { appointmentEhrIds: [], patientEhrIds: [], patientMrns: [] };
  if (change.kind === 'appointment') return { appointmentEhrIds: id(change.appointment.ehr_appointment_id), patientEhrIds: id(change.patient?.ehr_patient_id), patientMrns: [] };
  if (change.kind === 'patient') return { appointmentEhrIds: [], patientEhrIds: id(change.patient.ehr_patient_id), patientMrns: [] };
  return { appointmentEhrIds: [], patientEhrIds: [...id(change.survivor.ehr_patient_id), ...change.merged.ehrIds.flatMap(id)], patientMrns: change.merged.mrns.flatMap(id) };
}

/**
 * The AE text for records that failed validation: which record and which fields, never a value
 * (validation reasons start with the field's name; see detection/validate.ts).
 */
export function quarantineText(items: readonly QuarantineItem[]): string {
  const fields = [...new Set(items.flatMap((q) => reasonProblems(q.reason).map((p) => p.field)))].filter((f) => f !== '');
  const kinds = [...new Set(items.map((q) => q.kind))].join(' and ');
  return `the ${kinds} was set aside (quarantine${fields.length > 0 ? `: ${fields.join(', ')}` : ''}); see GET /v1/quarantine`;
}

/** Applies pushed messages, one group commit at a time. */
export class PushIngest {
  private readonly queue: Pending[] = [];
  private writing: Promise<void> | null = null;
  private readonly log: Logger;
  private readonly newId: () => string;

  constructor(private readonly deps: PushIngestDeps) {
    this.log = deps.logger ?? silentLogger;
    this.newId = deps.newId ?? defaultNewId;
  }

  /** Applies one message; resolves once it is committed (or known as a duplicate). Rejects when the store fails: nothing was committed. */
  apply(req: PushRequest): Promise<PushResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.writing ??= this.drain().finally(() => {
        this.writing = null;
      });
    });
  }

  /** Resolves once every message accepted so far is committed or failed. */
  async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      // Let the event loop read the sockets first. The SQLite driver is synchronous, so without
      // this turn every await here resolves at once and each commit carries a single message:
      // messages that arrived meanwhile would never be grouped.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = this.queue.splice(0, this.deps.maxBatch ?? 256);
      await this.commitBatch(batch);
    }
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    const retries = this.deps.maxConflictRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      try {
        const planned = await this.plan(batch);
        const results = await this.deps.store.commitPushes(planned.map((p) => p.commit));
        batch.forEach((p, i) => p.resolve({ ...planned[i]!.result, duplicate: results[i] === 'duplicate' }));
        return;
      } catch (err) {
        // Planned on a projection another writer changed, or a deadlock / serialization failure
        // between processes (transient): plan and commit again from fresh reads.
        if ((err instanceof ConflictError || isTransientDbError(err)) && attempt < retries) continue;
        if (batch.length > 1 && !isTransientDbError(err)) {
          // A message that cannot be committed (a connection deleted meanwhile, a record the
          // database refuses) must not fail the others sharing its commit: each goes alone, in order.
          // (The database down fails them all the same: no point trying each.)
          for (const p of batch) await this.commitBatch([p]);
          return;
        }
        this.log.warn({ messages: batch.length, error: safeErrorCode(err) ?? 'error' }, 'pushed messages not committed; their senders will resend');
        for (const p of batch) p.reject(err);
        return;
      }
    }
  }

  /** Plans every message of a batch against fresh reads, in order, each against what the earlier left. */
  private async plan(batch: Pending[]): Promise<{ commit: PushCommit; result: Omit<PushResult, 'duplicate'> }[]> {
    const now: EpochMs = this.deps.clock.now();
    // One read per connection, of every record its messages in this batch touch.
    const byConnection = new Map<string, { appointmentEhrIds: Set<string>; patientEhrIds: Set<string>; patientMrns: Set<string> }>();
    for (const { req } of batch) {
      const keys = keysOf(req.change);
      const acc = byConnection.get(req.connection.id) ?? { appointmentEhrIds: new Set(), patientEhrIds: new Set(), patientMrns: new Set() };
      keys.appointmentEhrIds.forEach((k) => acc.appointmentEhrIds.add(k));
      keys.patientEhrIds.forEach((k) => acc.patientEhrIds.add(k));
      keys.patientMrns.forEach((k) => acc.patientMrns.add(k));
      byConnection.set(req.connection.id, acc);
    }
    const slices = new Map<string, PushSlice & { providerMap: Map<string, ProviderRecord>; versionSent: boolean }>();
    await Promise.all(
      [...byConnection].map(async ([id, k]) => {
        const slice = await this.deps.store.loadPushSlice(id, { appointmentEhrIds: [...k.appointmentEhrIds], patientEhrIds: [...k.patientEhrIds], patientMrns: [...k.patientMrns] });
        slices.set(id, { ...slice, providerMap: new Map(slice.providers.map((p) => [p.ehr_id, p])), versionSent: false });
      }),
    );

    return batch.map(({ req }) => {
      const slice = slices.get(req.connection.id)!;
      const version = slice.versionSent ? undefined : slice.projection.version;
      slice.versionSent = true;
      const base = { ...req.message, connectionId: req.connection.id };
      if (req.change === null) {
        const quarantined = req.quarantine.length > 0;
        const plan = { ...emptyPlan(), quarantined: [...req.quarantine] };
        const result = quarantined
          ? { outcome: 'quarantined' as const, ackCode: 'AE' as const, errorText: req.quarantine.map((q) => q.reason).join('; ').slice(0, 200), events: 0 }
          : { outcome: 'unsupported' as const, ackCode: 'AA' as const, errorText: null, events: 0 };
        return { commit: { message: { ...base, ...resultFields(result) }, plan, retirePatientEhrIds: [], recordTimes: [], projectionVersion: version }, result };
      }
      const pushed = planPush({
        connection: { id: req.connection.id, referenceId: req.connection.referenceId, timezone: req.connection.timezone, statusMap: req.statusMap },
        now,
        projection: slice.projection,
        providers: slice.providerMap,
        change: req.change,
        messageTimeMs: req.orderTimeMs,
        recordTimes: slice.recordTimes,
        newId: this.newId,
      });
      // What the next message of this batch plans against.
      slice.projection = overlay(slice.projection, pushed.plan, pushed.retirePatientEhrIds);
      for (const t of pushed.recordTimes) {
        const key = recordTimeKey(t.kind, t.ehrId);
        slice.recordTimes.set(key, Math.max(t.ms, slice.recordTimes.get(key) ?? t.ms));
      }
      for (const p of pushed.plan.upsertProviders) slice.providerMap.set(p.ehr_id, p);
      const named = pushed.plan.quarantined.map((q) => (req.sourceFields ? { ...q, reason: withSources(q.reason, req.sourceFields) } : q));
      const plan = { ...pushed.plan, quarantined: [...req.quarantine, ...named] };
      const result: Omit<PushResult, 'duplicate'> =
        plan.quarantined.length > 0
          ? { outcome: 'quarantined', ackCode: 'AE', errorText: quarantineText(plan.quarantined), events: plan.events.length }
          : { outcome: pushed.stale ? 'stale' : 'applied', ackCode: 'AA', errorText: null, events: plan.events.length };
      return {
        commit: { message: { ...base, ...resultFields(result) }, plan, retirePatientEhrIds: pushed.retirePatientEhrIds, recordTimes: pushed.recordTimes, projectionVersion: version },
        result,
      };
    });
  }
}

function resultFields(r: Pick<PushResult, 'outcome' | 'ackCode' | 'errorText'>): Pick<FeedMessage, 'outcome' | 'ackCode' | 'errorText'> {
  return { outcome: r.outcome, ackCode: r.ackCode, errorText: r.errorText };
}

/**
 * A validation reason with each problem's source in the message: "datetime is not … [SCH-11.4,
 * TQ1-7 or AIS-4, an HL7 DTM]". Each problem starts with its field's name (detection/validate.ts).
 */
export function withSources(reason: string, sources: Readonly<Record<string, string>>): string {
  return reasonProblems(reason)
    .map(({ field, text }) => {
      const source = Object.hasOwn(sources, field) ? sources[field] : undefined;
      return source === undefined ? text : `${text} [${source}]`;
    })
    .join('; ')
    .slice(0, 1000);
}
