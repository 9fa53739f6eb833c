/**
 * @module demo-ehr/fhir-api — the demo EHR's FHIR R4 REST API over node:http: read, search (date,
 * `_lastUpdated`, status, identifier, patient, practitioner, `_id`, `_count`/`_offset` with
 * `Bundle.link` paging), create (incl. conditional `If-None-Exist`), update (`If-Match`), delete
 * (410 afterwards), `metadata`. Errors are OperationOutcomes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DemoClinic } from './clinic.js';
import type { DemoType, FhirResource, StoreQuery } from './store.js';
import { DEMO_TYPES } from './store.js';

/** Largest request body accepted. */
const MAX_BODY = 1_000_000;
const DEFAULT_COUNT = 50;
const MAX_COUNT = 1000;

class FhirHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function outcome(severity: string, code: string, diagnostics: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/fhir+json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a request body (bounded). */
export async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new FhirHttpError(413, 'too-costly', 'The request body is too large.');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseResource(text: string, type: DemoType): FhirResource {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw new FhirHttpError(400, 'structure', 'The body is not JSON.');
  }
  if (typeof r !== 'object' || r === null || (r as { resourceType?: unknown }).resourceType !== type) throw new FhirHttpError(400, 'structure', `The body must be a ${type}.`);
  return r as FhirResource;
}

const PREFIX_RE = /^(ge|gt|le|lt|eq)?(\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)?)$/;

function bounds(values: string[], name: string): [string, string][] {
  return values.map((v) => {
    const m = PREFIX_RE.exec(v);
    if (!m) throw new FhirHttpError(400, 'invalid', `Invalid ${name} value.`);
    const ms = Date.parse(m[2] as string);
    if (Number.isNaN(ms)) throw new FhirHttpError(400, 'invalid', `Invalid ${name} value.`);
    return [(m[1] ?? 'eq') as string, new Date(ms).toISOString()];
  });
}

function etagVersion(h: string | undefined): string | null {
  if (!h) return null;
  return /^(?:W\/)?"?([^"]*)"?$/.exec(h.trim())?.[1] ?? null;
}

/** Checks references and required fields of a resource the API is asked to store. */
function validate(clinic: DemoClinic, r: FhirResource): void {
  if (r.resourceType !== 'Appointment') return;
  if (typeof r.status !== 'string') throw new FhirHttpError(422, 'required', 'Appointment.status is required.');
  if (typeof r.start !== 'string' || Number.isNaN(Date.parse(r.start))) throw new FhirHttpError(422, 'required', 'Appointment.start must be an instant.');
  const refs = (Array.isArray(r.participant) ? (r.participant as { actor?: { reference?: string } }[]) : []).map((p) => p.actor?.reference ?? '');
  if (!refs.some((x) => x.startsWith('Patient/'))) throw new FhirHttpError(422, 'required', 'Appointment needs a Patient participant.');
  for (const ref of refs) {
    const [t, id] = ref.split('/');
    if ((t === 'Patient' || t === 'Practitioner') && id) {
      const found = clinic.store.get(t, id);
      if (!found || found === 'gone') throw new FhirHttpError(422, 'not-found', `Unknown reference ${t}/{id}.`);
    }
  }
}

/** Behaviours of real EHRs the demo can imitate, so connectors are tested against them. */
export interface DemoQuirks {
  /** Appointment searches need a `date` (Oracle Health); `_id`/`identifier` searches excepted. */
  requireDate?: boolean;
  /** No `_lastUpdated` search (400) and none in `metadata`. */
  noLastUpdated?: boolean;
  /** `meta.versionId` and ETag always `1` (OpenEMR); If-Match is not checked. */
  fakeVersionId?: boolean;
  /** A deleted resource leaves no trace: 404, not 410 (Medplum). */
  hardDelete?: boolean;
  /** Search bundles carry no `link` (paging by `_offset` only). */
  noLinks?: boolean;
}

/** Where the demo's FHIR API is mounted and what it is told to behave like. */
export interface FhirApiOptions {
  /** Absolute URL of `/fhir` as clients see it (for fullUrl and paging links). */
  baseUrl: () => string;
  quirks?: DemoQuirks;
}

/** A resource as this server presents it (fake versionId quirk). */
function present(r: FhirResource, q: DemoQuirks | undefined): FhirResource {
  return q?.fakeVersionId ? { ...r, meta: { ...(r.meta as object), versionId: '1' } } : r;
}

function version(r: FhirResource): string {
  return (r.meta as { versionId: string }).versionId;
}

/** Handles one request under `/fhir`; `path` is what follows `/fhir`. */
export async function handleFhir(clinic: DemoClinic, opts: FhirApiOptions, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  try {
    await route(clinic, opts, req, res, path, query);
  } catch (err) {
    if (err instanceof FhirHttpError) send(res, err.status, outcome('error', err.code, err.message));
    else send(res, 500, outcome('fatal', 'exception', 'Internal error.'));
  }
}

async function route(clinic: DemoClinic, opts: FhirApiOptions, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  const seg = path.split('/').filter(Boolean);
  const method = req.method ?? 'GET';
  if (seg.length === 1 && seg[0] === 'metadata' && method === 'GET') return send(res, 200, capabilityStatement(opts.baseUrl(), opts.quirks));
  const type = seg[0] as DemoType;
  if (!(DEMO_TYPES as readonly string[]).includes(type)) throw new FhirHttpError(404, 'not-supported', 'Unknown resource type.');
  const store = clinic.store;
  const now = () => new Date(clinic.options.now()).toISOString();
  if (seg.length === 1 && method === 'GET') return send(res, 200, search(clinic, opts, type, query));
  if (seg.length === 1 && method === 'POST') {
    const r = parseResource(await readBody(req), type);
    const cond = req.headers['if-none-exist'];
    if (typeof cond === 'string' && cond !== '') {
      const found = search(clinic, opts, type, new URLSearchParams(cond)).entry as { resource: FhirResource }[];
      if (found.length > 1) throw new FhirHttpError(412, 'duplicate', 'The If-None-Exist criteria match more than one resource.');
      if (found.length === 1) {
        const existing = found[0]!.resource;
        return send(res, 200, existing, { location: `${opts.baseUrl()}/${type}/${existing.id}/_history/${version(existing)}`, etag: `W/"${version(existing)}"` });
      }
    }
    validate(clinic, r);
    const stored = present(store.transaction(() => clinic.save({ ...r, id: store.nextId(type), meta: undefined })), opts.quirks);
    const v = version(stored);
    return send(res, 201, stored, { location: `${opts.baseUrl()}/${type}/${stored.id}/_history/${v}`, etag: `W/"${v}"` });
  }
  const id = seg[1] as string;
  if (seg.length === 2 && method === 'GET') {
    const got = store.get(type, id);
    if (got === 'gone') throw new FhirHttpError(410, 'deleted', `${type}/${id} was deleted.`);
    if (!got) throw new FhirHttpError(404, 'not-found', `${type}/${id} does not exist.`);
    const shown = present(got.resource, opts.quirks);
    return send(res, 200, shown, { etag: `W/"${version(shown)}"`, 'last-modified': new Date(String((got.resource.meta as { lastUpdated: string }).lastUpdated)).toUTCString() });
  }
  if (seg.length === 2 && method === 'PUT') {
    const r = parseResource(await readBody(req), type);
    if (r.id !== id) throw new FhirHttpError(400, 'invalid', 'The resource id differs from the URL.');
    validate(clinic, r);
    const stored = store.transaction(() => {
      const cur = store.get(type, id);
      if (cur === 'gone') throw new FhirHttpError(410, 'deleted', `${type}/${id} was deleted.`);
      if (!cur) throw new FhirHttpError(404, 'not-found', `${type}/${id} does not exist.`);
      const want = etagVersion(req.headers['if-match']);
      if (want !== null && !opts.quirks?.fakeVersionId && want !== String(cur.version)) throw new FhirHttpError(412, 'conflict', 'The resource changed since it was read (If-Match).');
      return present(clinic.save({ ...r, meta: undefined }), opts.quirks);
    });
    const v = version(stored);
    return send(res, 200, stored, { etag: `W/"${v}"` });
  }
  if (seg.length === 2 && method === 'DELETE') {
    if (opts.quirks?.hardDelete) store.purge(type, id, now());
    else store.delete(type, id, now());
    res.writeHead(204).end();
    return;
  }
  throw new FhirHttpError(405, 'not-supported', 'Operation not supported.');
}

function search(clinic: DemoClinic, opts: FhirApiOptions, type: DemoType, query: URLSearchParams): Record<string, unknown> {
  const count = Math.min(MAX_COUNT, Math.max(1, Number(query.get('_count') ?? DEFAULT_COUNT) || DEFAULT_COUNT));
  const offset = Math.max(0, Number(query.get('_offset') ?? 0) || 0);
  const q: StoreQuery = { type, count, offset };
  const list = (name: string) => query.getAll(name).flatMap((v) => v.split(',')).filter(Boolean);
  if (query.has('_id')) q.ids = list('_id');
  if (query.has('date')) {
    if (type !== 'Appointment') throw new FhirHttpError(400, 'not-supported', 'date applies to Appointment.');
    q.start = bounds(query.getAll('date'), 'date');
  }
  if (query.has('_lastUpdated') && opts.quirks?.noLastUpdated) throw new FhirHttpError(400, 'not-supported', 'Search parameter _lastUpdated is not supported.');
  if (opts.quirks?.requireDate && type === 'Appointment' && !query.has('date') && !query.has('_id') && !query.has('identifier')) throw new FhirHttpError(400, 'required', 'A date parameter is required when searching Appointment.');
  if (query.has('_lastUpdated')) q.lastUpdated = bounds(query.getAll('_lastUpdated'), '_lastUpdated');
  if (query.has('status')) q.status = list('status');
  if (query.has('patient')) q.patient = (query.get('patient') ?? '').replace(/^Patient\//, '');
  if (query.has('practitioner')) q.practitioner = list('practitioner').map((p) => p.replace(/^Practitioner\//, ''));
  if (query.has('identifier')) {
    const v = query.get('identifier') ?? '';
    const bar = v.indexOf('|');
    q.identifier = bar < 0 ? { system: null, value: v } : { system: v.slice(0, bar), value: v.slice(bar + 1) };
  }
  const known = ['_id', 'date', '_lastUpdated', 'status', 'patient', 'practitioner', 'identifier', '_count', '_offset', '_sort', '_total'];
  for (const k of query.keys()) if (!known.includes(k)) throw new FhirHttpError(400, 'not-supported', `Search parameter ${k} is not supported.`);
  const { resources, total } = clinic.store.search(q);
  const base = opts.baseUrl();
  const link = (off: number) => {
    const p = new URLSearchParams(query);
    p.set('_count', String(count));
    p.set('_offset', String(off));
    return `${base}/${type}?${p.toString()}`;
  };
  const links = [{ relation: 'self', url: link(offset) }];
  if (offset + resources.length < total) links.push({ relation: 'next', url: link(offset + count) });
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    ...(opts.quirks?.noLinks ? {} : { link: links }),
    entry: resources.map((r) => ({ fullUrl: `${base}/${type}/${r.id}`, resource: present(r, opts.quirks), search: { mode: 'match' } })),
  };
}

function capabilityStatement(base: string, quirks: DemoQuirks | undefined) {
  const common = [{ name: '_id', type: 'token' }, ...(quirks?.noLastUpdated ? [] : [{ name: '_lastUpdated', type: 'date' }]), { name: 'identifier', type: 'token' }];
  const interactions = ['read', 'search-type', 'create', 'update', 'delete'].map((code) => ({ code }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    implementation: { description: 'ehrsync demo EHR (fake data only)', url: base },
    rest: [
      {
        mode: 'server',
        resource: [
          { type: 'Appointment', interaction: interactions, conditionalCreate: true, versioning: 'versioned-update', searchParam: [...common, { name: 'date', type: 'date' }, { name: 'status', type: 'token' }, { name: 'patient', type: 'reference' }, { name: 'practitioner', type: 'reference' }] },
          { type: 'Patient', interaction: interactions, conditionalCreate: true, versioning: 'versioned-update', searchParam: common },
          { type: 'Practitioner', interaction: interactions, versioning: 'versioned-update', searchParam: common },
        ],
      },
    ],
  };
}
