/**
 * @module connectors/fhir/fhir-connector — the `fhir` connector: reads Appointment in a date window
 * (paging by `Bundle.link` next, else `_count`/`_offset`), the Patients and Practitioners they
 * reference, Patients changed since (`_lastUpdated`, where the server has it), one Appointment by
 * id (404/410 = gone), and writes with conditional create so a retried job never writes twice.
 */
import type { TimeWindow } from '../../domain/clock.js';
import { isoUtc } from '../../domain/clock.js';
import { EhrError } from '../../domain/errors.js';
import type { Logger } from '../../domain/logger.js';
import { silentLogger } from '../../domain/logger.js';
import type { AppointmentRecord, Candidate, PatientRecord, QuarantineItem } from '../../domain/records.js';
import type { StatusMap } from '../../domain/status.js';
import { effectiveStatusMap } from '../../domain/status.js';
import type {
  AppointmentChanges,
  AppointmentDraft,
  AppointmentLookup,
  ConnectorCapabilities,
  ConnectorWrites,
  EhrConnector,
  PatientDraft,
  PatientQuery,
  PatientsRead,
  ProviderInfo,
  ReadOptions,
  ScheduleRead,
  WriteOptions,
} from '../connector.js';
import type { AuthProvider } from './auth.js';
import { createAuth } from './auth.js';
import type { FhirConfig } from './config.js';
import { FhirHttp, sleepMs } from './http.js';
import type { MappingOptions, Resource } from './mapping.js';
import {
  appointmentResource,
  JOB_IDENTIFIER_SYSTEM,
  mapAppointment,
  mapPatient,
  mapPractitioner,
  participants,
  patientResource,
  setExtension,
  statusForWrite,
  statusProblem,
  unmappable,
} from './mapping.js';

/** What the connector takes from its surroundings (all injectable for tests). */
export interface FhirConnectorDeps {
  fetch?: typeof fetch;
  logger?: Logger;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Connector kind reported (`fhir`, or `demo` for the demo profile). */
  kind?: string;
  /** The connector's own status codes (a profile's native codes), beneath the config's `statusMap`. */
  profileStatusMap?: StatusMap;
}

/** Most pages of one search: a server that keeps sending `next` forever fails the read instead of looping. */
const MAX_PAGES = 10_000;
/** Ids per `_id=a,b,c` search (URL length stays well under common limits). */
const ID_CHUNK = 50;

const isObj = (v: unknown): v is Resource => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A FHIR R4 EHR connector. */
export class FhirConnector implements EhrConnector {
  readonly kind: string;
  readonly capabilities: ConnectorCapabilities;
  readonly statusMap: StatusMap | undefined;
  readonly writes?: ConnectorWrites;
  private readonly http: FhirHttp;
  private readonly auth: AuthProvider;
  private readonly map: MappingOptions;
  private readonly log: Logger;
  private capabilityChecked = false;

  constructor(
    private readonly config: FhirConfig,
    deps: FhirConnectorDeps = {},
  ) {
    const now = deps.now ?? Date.now;
    const f = deps.fetch ?? fetch;
    this.kind = deps.kind ?? 'fhir';
    this.log = deps.logger ?? silentLogger;
    this.auth = createAuth(config.auth, { fetch: f, now, timeoutMs: config.timeoutMs });
    this.http = new FhirHttp({
      baseUrl: config.baseUrl,
      auth: this.auth,
      fetch: f,
      logger: this.log,
      now,
      sleep: deps.sleep ?? sleepMs,
      timeoutMs: config.timeoutMs,
      rateLimitPerSec: config.rateLimitPerSec,
      maxRetries: config.maxRetries,
    });
    this.map = { mrnSystem: config.mrnSystem, statusExtension: config.statusExtension, modeExtension: config.modeExtension };
    const sm = { ...deps.profileStatusMap, ...config.statusMap };
    this.statusMap = Object.keys(sm).length > 0 ? sm : undefined;
    this.capabilities = { patientsChangedSince: config.lastUpdated !== false, writes: config.writes, push: false };
    this.capabilityChecked = config.lastUpdated !== 'auto';
    if (config.writes) {
      this.writes = {
        createAppointment: (d, o) => this.createAppointment(d, o),
        updateAppointment: (id, c, o) => this.updateAppointment(id, c, o),
        createPatient: (d, o) => this.createPatient(d, o),
        updatePatient: (id, c, o) => this.updatePatient(id, c, o),
      };
    }
  }

  /** Reads every page of a search; returns the entries' resources (any type) in order. */
  async search(first: string, signal: AbortSignal): Promise<unknown[]> {
    const out: unknown[] = [];
    let url: string | null = first;
    let offset = 0;
    let firstIdOfPrevPage: unknown;
    let sawNext = false;
    for (let page = 0; url !== null; page++) {
      if (page >= MAX_PAGES) throw new EhrError('ehr_bad_response', `The EHR kept sending pages after ${MAX_PAGES}; stopping.`);
      const res = await this.http.request({ url, signal });
      const b = res.body;
      if (!b || b.resourceType !== 'Bundle') throw new EhrError('ehr_bad_response', `The EHR answered a search with ${b ? `a ${String(b.resourceType)}` : 'an empty body'} instead of a Bundle.`);
      const entries = Array.isArray(b.entry) ? b.entry : [];
      const resources = entries.map((e: unknown) => (isObj(e) ? e.resource : e));
      // Only the matches, not _include'd resources or OperationOutcome warnings, count towards a page.
      const matches = entries.filter((e: unknown) => !isObj(e) || !isObj(e.search) || e.search.mode !== 'include' && e.search.mode !== 'outcome').length;
      out.push(...resources);
      const next = (Array.isArray(b.link) ? b.link : []).find((l: unknown) => isObj(l) && l.relation === 'next') as Resource | undefined;
      if (next && typeof next.url === 'string') {
        url = next.url;
        sawNext = true;
      } else if (!sawNext && matches >= this.config.pageSize && !(typeof b.total === 'number' && offset + matches >= b.total)) {
        // No next link but a full page (e.g. Medplum's MemoryRepository): page by offset while pages come back full.
        const firstId = isObj(resources[0]) ? resources[0].id : undefined;
        if (page > 0 && firstId !== undefined && firstId === firstIdOfPrevPage) throw new EhrError('ehr_bad_response', 'The EHR ignores _offset and sends no paging links; raise pageSize above the number of appointments in the window.');
        firstIdOfPrevPage = firstId;
        offset += matches;
        url = `${first}${first.includes('?') ? '&' : '?'}_offset=${offset}`;
      } else url = null;
    }
    return out;
  }

  /** Asks `metadata` once whether Patient supports `_lastUpdated` (when configured `auto`). */
  private async checkCapabilities(signal: AbortSignal): Promise<void> {
    if (this.capabilityChecked) return;
    this.capabilityChecked = true;
    try {
      const res = await this.http.request({ url: 'metadata', signal, allow: [400, 404, 405, 501] });
      const rest = isObj(res.body) && Array.isArray(res.body.rest) ? res.body.rest : [];
      for (const r of rest) {
        const patient = (isObj(r) && Array.isArray(r.resource) ? r.resource : []).find((x: unknown) => isObj(x) && x.type === 'Patient') as Resource | undefined;
        if (patient && Array.isArray(patient.searchParam)) {
          const names = patient.searchParam.map((p: unknown) => (isObj(p) ? p.name : null));
          const common = Array.isArray(r.searchParam) ? r.searchParam.map((p: unknown) => (isObj(p) ? p.name : null)) : [];
          this.capabilities.patientsChangedSince = names.includes('_lastUpdated') || common.includes('_lastUpdated');
        }
      }
    } catch (err) {
      if (err instanceof EhrError && err.code === 'ehr_bad_response') return; // no usable metadata: keep the default
      this.capabilityChecked = false;
      throw err;
    }
  }

  private async readByIds(type: 'Patient' | 'Practitioner', ids: string[], signal: AbortSignal): Promise<unknown[]> {
    const out: unknown[] = [];
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += ID_CHUNK) {
      const chunk = unique.slice(i, i + ID_CHUNK);
      out.push(...(await this.search(`${type}?_id=${chunk.map(encodeURIComponent).join(',')}&_count=${Math.max(chunk.length, this.config.pageSize)}`, signal)));
    }
    return out;
  }

  /** Patients and practitioners the appointments reference, read in batches. */
  private async related(appointments: Resource[], signal: AbortSignal) {
    const patientIds: string[] = [];
    const drIds: string[] = [];
    for (const a of appointments) {
      const p = participants(a);
      if (p.patientId) patientIds.push(p.patientId);
      drIds.push(...p.practitionerIds);
    }
    const patients = new Map<string, Resource>();
    for (const r of await this.readByIds('Patient', patientIds, signal)) if (isObj(r) && r.resourceType === 'Patient' && typeof r.id === 'string') patients.set(r.id, r);
    const providers = new Map<string, ProviderInfo>();
    for (const r of await this.readByIds('Practitioner', drIds, signal)) {
      const info = isObj(r) && r.resourceType === 'Practitioner' ? mapPractitioner(r) : null;
      if (info) providers.set(info.ehr_id, info);
    }
    return { patients, practitioners: providers };
  }

  async readSchedule(window: TimeWindow, opts: ReadOptions & { providerEhrIds?: string[] }): Promise<ScheduleRead> {
    await this.checkCapabilities(opts.signal);
    const p = this.config.windowParam;
    let q = `Appointment?${p}=ge${isoUtc(window.startMs)}&${p}=lt${isoUtc(window.endMs)}&_count=${this.config.pageSize}`;
    if (opts.providerEhrIds && opts.providerEhrIds.length > 0 && opts.providerEhrIds.length <= ID_CHUNK) q += `&practitioner=${opts.providerEhrIds.map(encodeURIComponent).join(',')}`;
    const raw = await this.search(q, opts.signal);
    const quarantined: QuarantineItem[] = [];
    const resources: Resource[] = [];
    for (const r of raw) {
      const bad = unmappable('appointment', r, 'Appointment');
      if (bad) quarantined.push(bad);
      else if (isObj(r) && r.resourceType === 'Appointment') {
        const problem = statusProblem(r, this.map);
        if (problem) quarantined.push({ kind: 'appointment', ehr_id: String(r.id), reason: problem, raw: JSON.stringify(r).slice(0, 2000) });
        else resources.push(r);
      }
    }
    const related = await this.related(resources, opts.signal);
    const appointments = resources.map((a) => mapAppointment(a, related, this.map));
    const patients = [...related.patients.values()].map((pt) => mapPatient(pt, this.map));
    return { appointments, patients, providers: [...related.practitioners.values()], quarantined };
  }

  async readPatients(query: PatientQuery, opts: ReadOptions): Promise<PatientsRead> {
    if (!('ids' in query)) {
      await this.checkCapabilities(opts.signal);
      // Without `_lastUpdated` patients are read only through their appointments (docs/connectors.md).
      if (!this.capabilities.patientsChangedSince) return { patients: [], quarantined: [] };
    }
    const raw = 'ids' in query
      ? await this.readByIds('Patient', query.ids, opts.signal)
      : await this.search(`Patient?_lastUpdated=ge${encodeURIComponent(query.changedSince)}&_count=${this.config.pageSize}`, opts.signal);
    const quarantined: QuarantineItem[] = [];
    const patients: Candidate<PatientRecord>[] = [];
    for (const r of raw) {
      const bad = unmappable('patient', r, 'Patient');
      if (bad) quarantined.push(bad);
      else if (isObj(r) && r.resourceType === 'Patient') patients.push(mapPatient(r, this.map));
    }
    return { patients, quarantined };
  }

  async readAppointment(ehrId: string, opts: ReadOptions): Promise<AppointmentLookup> {
    const res = await this.http.request({ url: `Appointment/${encodeURIComponent(ehrId)}`, signal: opts.signal, allow: [404, 410] });
    if (res.status === 404 || res.status === 410) return { found: false };
    const a = res.body;
    if (!a || a.resourceType !== 'Appointment') throw new EhrError('ehr_bad_response', 'The EHR answered a read of Appointment/{id} with something that is not an Appointment.');
    // entered-in-error stays a status change: only 404/410 is a delete (docs/design.md §4).
    return this.withRelated(a, opts.signal).then((r) => ({ found: true as const, ...r }));
  }

  private async withRelated(a: Resource, signal: AbortSignal): Promise<{ appointment: Candidate<AppointmentRecord>; patient?: Candidate<PatientRecord> }> {
    const related = await this.related([a], signal);
    const appointment = mapAppointment(a, related, this.map);
    // An invalid status code leaves the status out, so detection quarantines the record.
    if (statusProblem(a, this.map)) delete appointment.status;
    const pid = participants(a).patientId;
    const pr = pid === null ? undefined : related.patients.get(pid);
    return pr ? { appointment, patient: mapPatient(pr, this.map) } : { appointment };
  }

  // ---- writes -------------------------------------------------------------------------------

  private nativeCodes(): string[] {
    if (!this.config.statusExtension) return [];
    return Object.keys(this.statusMap ?? {});
  }

  /**
   * Conditional create on the job identifier: the server creates the resource only when none
   * carries it, else answers with the existing one (200), so a job retried after a crash finds
   * its first write. Servers that ignore If-None-Exist are covered by a search first.
   */
  private async conditionalCreate(type: 'Appointment' | 'Patient', resource: Resource, key: string, signal: AbortSignal): Promise<Resource> {
    const ident = `identifier=${encodeURIComponent(`${JOB_IDENTIFIER_SYSTEM}|${key}`)}`;
    const existing = (await this.search(`${type}?${ident}`, signal)).find((r) => isObj(r) && r.resourceType === type) as Resource | undefined;
    if (existing) return existing;
    const res = await this.http.request({ method: 'POST', url: type, body: resource, signal, headers: { 'if-none-exist': ident, prefer: 'return=representation' }, clientErrorCode: 'ehr_rejected' });
    if (res.body && res.body.resourceType === type && typeof res.body.id === 'string') return res.body;
    // Prefer ignored: find it by its identifier, or by Location.
    const again = (await this.search(`${type}?${ident}`, signal)).find((r) => isObj(r) && r.resourceType === type) as Resource | undefined;
    if (again) return again;
    const loc = res.headers.get('location');
    const id = loc ? new RegExp(`${type}/([^/]+)`).exec(loc)?.[1] : undefined;
    if (!id) throw new EhrError('ehr_bad_response', `The EHR accepted the ${type} but did not say where it is.`);
    return this.read(type, id, signal);
  }

  private async read(type: 'Appointment' | 'Patient', id: string, signal: AbortSignal): Promise<Resource> {
    const res = await this.http.request({ url: `${type}/${encodeURIComponent(id)}`, signal, allow: [404, 410] });
    if (res.status === 404 || res.status === 410) throw new EhrError('ehr_rejected', `The EHR has no ${type} with that id.`);
    if (!res.body || res.body.resourceType !== type) throw new EhrError('ehr_bad_response', `The EHR answered a read of ${type}/{id} with something else.`);
    return res.body;
  }

  /** Read-modify-PUT with If-Match when the server versions resources. */
  private async put(type: 'Appointment' | 'Patient', r: Resource, signal: AbortSignal): Promise<Resource> {
    const version = isObj(r.meta) && typeof r.meta.versionId === 'string' ? r.meta.versionId : null;
    const headers: Record<string, string> = { prefer: 'return=representation' };
    if (version !== null) headers['if-match'] = `W/"${version}"`;
    const res = await this.http.request({ method: 'PUT', url: `${type}/${encodeURIComponent(String(r.id))}`, body: r, signal, headers, clientErrorCode: 'ehr_rejected' });
    if (res.body && res.body.resourceType === type) return res.body;
    return this.read(type, String(r.id), signal);
  }

  private async createAppointment(draft: AppointmentDraft, opts: WriteOptions) {
    const status = statusForWrite('booked', effectiveStatusMap(this.statusMap), this.nativeCodes());
    const resource = appointmentResource(draft, opts.idempotencyKey, { ...this.map, status });
    const created = await this.conditionalCreate('Appointment', resource, opts.idempotencyKey, opts.signal);
    return this.withRelated(created, opts.signal);
  }

  private async updateAppointment(ehrId: string, changes: AppointmentChanges, opts: WriteOptions) {
    // One retry on a version conflict (412): someone changed it between our read and our write.
    for (let attempt = 0; ; attempt++) {
      const current = await this.read('Appointment', ehrId, opts.signal);
      const next = structuredClone(current);
      if (changes.status !== undefined) {
        const s = statusForWrite(changes.status, effectiveStatusMap(this.statusMap), this.nativeCodes());
        next.status = s.status;
        if (s.native !== null && this.config.statusExtension) setExtension(next, this.config.statusExtension, s.native);
      }
      if (changes.note !== undefined) next.comment = changes.note;
      if (changes.datetime !== undefined) {
        const start = Date.parse(changes.datetime);
        const oldStart = typeof current.start === 'string' ? Date.parse(current.start) : NaN;
        const oldEnd = typeof current.end === 'string' ? Date.parse(current.end) : NaN;
        const minutes = typeof current.minutesDuration === 'number' ? current.minutesDuration : Number.isFinite(oldEnd - oldStart) ? (oldEnd - oldStart) / 60_000 : 15;
        next.start = new Date(start).toISOString();
        next.end = new Date(start + minutes * 60_000).toISOString();
      }
      try {
        const written = await this.put('Appointment', next, opts.signal);
        return await this.withRelated(written, opts.signal);
      } catch (err) {
        if (attempt === 0 && err instanceof EhrError && err.code === 'ehr_rejected' && /\b(409|412)\b/.test(err.message)) continue;
        throw err;
      }
    }
  }

  private async createPatient(draft: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>> {
    const resource = patientResource(draft, null, { mrnSystem: this.config.mrnSystem, jobKey: opts.idempotencyKey });
    return mapPatient(await this.conditionalCreate('Patient', resource, opts.idempotencyKey, opts.signal), this.map);
  }

  private async updatePatient(ehrId: string, changes: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.read('Patient', ehrId, opts.signal);
      try {
        return mapPatient(await this.put('Patient', patientResource(changes, current, { mrnSystem: this.config.mrnSystem }), opts.signal), this.map);
      } catch (err) {
        if (attempt === 0 && err instanceof EhrError && err.code === 'ehr_rejected' && /\b(409|412)\b/.test(err.message)) continue;
        throw err;
      }
    }
  }
}
