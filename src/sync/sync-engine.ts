/**
 * @module sync/sync-engine — runs one sync of one connection: read the EHR through its connector,
 * confirm what went missing with direct reads, plan (pure), and commit the plan with its events and
 * deliveries in one transaction. A failure at any step records a failed run and leaves the
 * projection untouched.
 */
import type { Clock } from '../domain/clock.js';
import { isoUtc, syncWindow } from '../domain/clock.js';
import { describeError, EhrError } from '../domain/errors.js';
import type { EventType } from '../domain/events.js';
import { newId } from '../domain/ids.js';
import type { Logger } from '../domain/logger.js';
import type { Metrics } from '../domain/metrics.js';
import { silentLogger } from '../domain/logger.js';
import type { AppointmentRecord, Candidate, PatientRecord, QuarantineItem } from '../domain/records.js';
import { effectiveStatusMap } from '../domain/status.js';
import type { EhrConnector } from '../connectors/connector.js';
import { candidateIds, findMissingAppointments, planSync } from '../detection/plan.js';
import type { Connection } from '../domain/entities.js';
import type { Projection, SyncCommits, SyncLeases } from '../store/ports.js';
import { directReadTurn, nextSyncDelay } from './sync-policy.js';

/** The ports one sync uses: it reads the projection and providers, and records its run and commit. */
export type SyncRunStore = Projection & SyncCommits;

/**
 * The ports the sync stage uses: a sync's, plus the connection leases of the scheduler (which takes
 * these same deps). A full `Store` satisfies it.
 */
export type SyncStore = SyncRunStore & SyncLeases;

/** What the engine (and the scheduler running it) needs from the outside world. */
export interface SyncEngineDeps {
  store: SyncStore;
  /** The connector of a connection (the caller caches instances). */
  connectorFor: (connection: Connection) => EhrConnector;
  clock: Clock;
  logger?: Logger;
  /** A sync (all reads) that takes longer is aborted and recorded as failed. Default 120 s. */
  timeoutMs?: number;
  /** At most this many direct reads of missing appointments per sync; the rest wait for the next. Default 200. */
  maxDirectReads?: number;
  /** How far back a `patients changed since` read reaches before its cursor, for clock skew. Default 5 min. */
  patientLookbackMs?: number;
  /** Source of randomness for jitter. */
  random?: () => number;
  /** Source of ids (tests make them predictable). */
  newId?: () => string;
  /** Where sync figures are counted. */
  metrics?: Metrics;
  /** Told as each step of a sync finishes (the CLI shows progress of a long first sync). */
  onProgress?: (step: SyncProgress) => void;
}

/** A finished step of a sync, with how many records it handled. */
export interface SyncProgress {
  step: 'schedule read' | 'moved or deleted checked' | 'changed patients read' | 'planned' | 'committed';
  count: number;
  /** Milliseconds since the sync started. */
  ms: number;
}

/** The outcome of one sync. */
export type SyncOutcome =
  | { status: 'succeeded'; runId: string; counts: Partial<Record<EventType, number>>; quarantined: number; baseline: boolean }
  | { status: 'failed'; runId: string; errorCode: string; errorMessage: string };

/** What one sync needs: the engine's deps, of whose store only a sync's ports. */
export type SyncRunDeps = Omit<SyncEngineDeps, 'store'> & { store: SyncRunStore };

/** Runs one sync of `connection`. Never throws for EHR problems; the outcome says what happened. */
export async function syncConnection(deps: SyncRunDeps, connection: Connection): Promise<SyncOutcome> {
  const { store, clock } = deps;
  const log = deps.logger ?? silentLogger;
  const random = deps.random ?? Math.random;
  const startedAt = clock.now();
  const run = await store.startSyncRun(connection.id, startedAt);
  // Not AbortSignal.timeout(): its timer is unref'd, so a process whose only work is a hung read
  // would exit instead of failing the run.
  const timeoutMs = deps.timeoutMs ?? 120_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new EhrError('ehr_timeout', `The EHR did not answer within ${timeoutMs} ms.`)), timeoutMs);
  const signal = controller.signal;
  const progress = (step: SyncProgress['step'], count: number): void => deps.onProgress?.({ step, count, ms: clock.now() - startedAt });
  try {
    const connector = deps.connectorFor(connection);
    const window = syncWindow(startedAt, connection.windowPastDays, connection.windowFutureDays);
    const [projection, providerList] = await Promise.all([store.loadProjection(connection.id), store.listProviders(connection.id)]);
    const providers = new Map(providerList.map((p) => [p.ehr_id, p]));
    const baseline = connection.baselineAt === null ? (connection.replayBaseline ? 'replay' : 'silent') : null;

    const schedule = await connector.readSchedule(window, { signal });
    progress('schedule read', schedule.appointments.length);

    // Appointments that should be in the window but are not: moved, or deleted? Ask directly.
    const missing = directReadTurn(findMissingAppointments(projection, candidateIds(schedule.appointments), window, providers), deps.maxDirectReads ?? 200, random());
    const directAppointments: Candidate<AppointmentRecord>[] = [];
    const directPatients: Candidate<PatientRecord>[] = [];
    const gone: string[] = [];
    const extraQuarantine: QuarantineItem[] = [];
    for (const ehrId of missing) {
      let lookup: Awaited<ReturnType<typeof connector.readAppointment>>;
      try {
        lookup = await connector.readAppointment(ehrId, { signal });
      } catch (err) {
        // The EHR down or slow, or our credentials refused (a token, or a scope allowing search but
        // not read), fails the sync visibly (retried later); anything else concerns this one record
        // (a 400 or 404-like refusal, an answer that is not an Appointment, one we cannot map): it
        // stays as it was, undecided, set aside with the reason, and the clinic's other changes go out.
        const e = describeError(err);
        if (signal.aborted || e.code === 'ehr_unavailable' || e.code === 'ehr_timeout' || e.code === 'ehr_auth_failed') throw err;
        extraQuarantine.push({ kind: 'appointment', ehr_id: ehrId, reason: `moved or deleted? The direct read failed (${e.code}): ${e.message}`.slice(0, 500), raw: '' });
        continue;
      }
      if (lookup.found) {
        directAppointments.push(lookup.appointment);
        if (lookup.patient) directPatients.push(lookup.patient);
      } else {
        gone.push(ehrId);
      }
    }
    if (missing.length > 0) progress('moved or deleted checked', missing.length);

    // Patients edited without touching an appointment: read what changed since the last cursor.
    let changedPatients: Candidate<PatientRecord>[] = [];
    // The baseline reads the lookback period too, so patients edited just before it are known
    // afterwards and the next read's overlap does not mistake them for new ones.
    if (connector.capabilities.patientsChangedSince) {
      const cursor = connection.patientCursor === null || baseline !== null ? startedAt : Date.parse(connection.patientCursor);
      const since = isoUtc(cursor - (deps.patientLookbackMs ?? 300_000));
      const read = await connector.readPatients({ changedSince: since }, { signal });
      changedPatients = read.patients;
      extraQuarantine.push(...read.quarantined);
      progress('changed patients read', read.patients.length);
    }
    signal.throwIfAborted();

    const plan = planSync({
      connection: {
        id: connection.id,
        referenceId: connection.referenceId,
        timezone: connection.timezone,
        statusMap: effectiveStatusMap({ ...connector.statusMap, ...connection.statusMap }),
      },
      now: clock.now(),
      baseline,
      projection,
      providers,
      appointmentReads: [schedule.appointments, directAppointments],
      patientReads: [schedule.patients, changedPatients, directPatients],
      seenProviders: schedule.providers,
      goneAppointmentIds: gone,
      connectorQuarantine: [...schedule.quarantined, ...extraQuarantine],
      newId: deps.newId ?? newId,
    });

    progress('planned', plan.events.length);
    const finishedAt = clock.now();
    await store.commitSync({
      runId: run.id,
      connectionId: connection.id,
      plan,
      finishedAt,
      baselineDone: baseline !== null,
      // The cursor is when this read began: anything changed later is read next time (with lookback).
      patientCursor: connector.capabilities.patientsChangedSince ? isoUtc(startedAt) : undefined,
      nextSyncAt: finishedAt + nextSyncDelay(connection.syncIntervalMs, 0, random()),
      projectionVersion: projection.version,
    });
    progress('committed', plan.events.length);
    deps.metrics?.syncRuns.inc({ outcome: 'succeeded' });
    deps.metrics?.syncDuration.observe((finishedAt - startedAt) / 1000);
    for (const [type, n] of Object.entries(plan.counts)) deps.metrics?.eventsDetected.inc({ type }, n);
    for (const q of plan.quarantined) deps.metrics?.quarantined.inc({ kind: q.kind });
    log.info(
      { connection_id: connection.id, run_id: run.id, events: plan.events.length, quarantined: plan.quarantined.length, baseline: baseline !== null, ms: finishedAt - startedAt },
      'sync succeeded',
    );
    return { status: 'succeeded', runId: run.id, counts: plan.counts, quarantined: plan.quarantined.length, baseline: baseline !== null };
  } catch (err) {
    // A read cut short by our timeout may surface as any error the connector's client throws.
    let e = describeError(err);
    if (signal.aborted && e.code === 'internal') e = describeError(signal.reason);
    const finishedAt = clock.now();
    // A conflict means an operation wrote while we read: nothing is wrong with the EHR, redo at once.
    const conflict = e.code === 'conflict';
    const failures = conflict ? connection.consecutiveFailures : connection.consecutiveFailures + 1;
    await store.failSyncRun({
      runId: run.id,
      connectionId: connection.id,
      finishedAt,
      errorCode: e.code,
      errorMessage: e.message,
      nextSyncAt: conflict ? finishedAt : finishedAt + nextSyncDelay(connection.syncIntervalMs, failures, random()),
      countsAsFailure: !conflict,
    });
    deps.metrics?.syncRuns.inc({ outcome: 'failed', error_code: e.code });
    log.warn({ connection_id: connection.id, run_id: run.id, error_code: e.code, failures }, 'sync failed');
    return { status: 'failed', runId: run.id, errorCode: e.code, errorMessage: e.message };
  } finally {
    clearTimeout(timer);
  }
}
