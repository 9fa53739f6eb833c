/**
 * @module demo-ehr/store — the demo EHR's persistent storage: one SQLite file of FHIR resources
 * (current version, tombstones for deletions) with the columns its searches need, and a write hook
 * (`onWrite`) that hears of every change inside the change's own transaction.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A stored FHIR resource: parsed JSON. */
export type FhirResource = Record<string, unknown> & { resourceType: string; id: string };

/** Resource types the demo EHR serves. */
export const DEMO_TYPES = ['Appointment', 'Patient', 'Practitioner'] as const;
/** One of them. */
export type DemoType = (typeof DEMO_TYPES)[number];

/** Search criteria the store answers in SQL. */
export interface StoreQuery {
  type: DemoType;
  ids?: string[];
  /** `[op, iso]` bounds on Appointment.start (`ge`, `gt`, `le`, `lt`, `eq`). */
  start?: [string, string][];
  lastUpdated?: [string, string][];
  status?: string[];
  patient?: string;
  practitioner?: string[];
  identifier?: { system: string | null; value: string };
  count: number;
  offset: number;
}

const OPS: Record<string, string> = { ge: '>=', gt: '>', le: '<=', lt: '<', eq: '=' };

/** One write to the store, as its `onWrite` listeners hear of it. */
export interface StoreWrite {
  type: DemoType;
  id: string;
  /** The resource before the write; null when it did not exist or was deleted. */
  before: FhirResource | null;
  /** The resource as stored; null for a deletion. */
  after: FhirResource | null;
  /** When it was written (ISO 8601 UTC: `meta.lastUpdated`, or the deletion's time). */
  at: string;
}

/** Hears of writes; called inside the write's transaction (see `DemoStore.onWrite`). */
export type StoreWriteListener = (write: StoreWrite) => void;

/** The demo EHR's store. */
export class DemoStore {
  readonly db: Database.Database;
  private readonly listeners: StoreWriteListener[] = [];

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, 'demo-ehr.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS resources (
        type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, last_updated TEXT NOT NULL,
        start TEXT, status TEXT, patient TEXT, practitioner TEXT, deleted INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL,
        PRIMARY KEY (type, id));
      CREATE INDEX IF NOT EXISTS resources_start ON resources (type, start, id);
      CREATE INDEX IF NOT EXISTS resources_lu ON resources (type, last_updated);
      CREATE TABLE IF NOT EXISTS identifiers (type TEXT NOT NULL, system TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (type, system, value, id));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
  }

  /** A meta value (seeded flag, id counters). */
  getMeta(key: string): string | null {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** A fresh id for a type: `<prefix><n>`, never reused. */
  nextId(type: DemoType): string {
    const key = `next:${type}`;
    const n = Number(this.getMeta(key) ?? '1000');
    this.setMeta(key, String(n + 1));
    return `${{ Appointment: 'a', Patient: 'p', Practitioner: 'dr' }[type]}${n}`;
  }

  /** Reads one resource: `gone` for a tombstone. */
  get(type: DemoType, id: string): { resource: FhirResource; version: number } | 'gone' | null {
    const row = this.db.prepare('SELECT json, version, deleted FROM resources WHERE type = ? AND id = ?').get(type, id) as { json: string; version: number; deleted: number } | undefined;
    if (!row) return null;
    if (row.deleted) return 'gone';
    return { resource: JSON.parse(row.json) as FhirResource, version: row.version };
  }

  /**
   * Registers a listener told of every write that changes a resource (put, delete, purge), called
   * synchronously inside the write's transaction: what it writes to this database commits or rolls
   * back with the change itself (the demo's HL7 feed keeps its outbox that way), and an exception
   * it throws undoes the write. Returns a function that removes it.
   */
  onWrite(listener: StoreWriteListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private tell(write: StoreWrite): void {
    for (const l of this.listeners) l(write);
  }

  /** The current resource (not a tombstone) as stored, for `StoreWrite.before`. */
  private current(type: DemoType, id: string): FhirResource | null {
    const row = this.db.prepare('SELECT json FROM resources WHERE type = ? AND id = ? AND deleted = 0').get(type, id) as { json: string } | undefined;
    return row ? (JSON.parse(row.json) as FhirResource) : null;
  }

  /**
   * Stores a resource as its next version (meta.versionId and meta.lastUpdated set here).
   * Returns the stored resource.
   */
  put(resource: FhirResource, lastUpdated: string): FhirResource {
    return this.transaction(() => {
      const type = resource.resourceType as DemoType;
      const before = this.listeners.length > 0 ? this.current(type, resource.id) : null;
      const prior = this.db.prepare('SELECT version FROM resources WHERE type = ? AND id = ?').get(type, resource.id) as { version: number } | undefined;
      const version = (prior?.version ?? 0) + 1;
      const stored: FhirResource = { ...resource, meta: { ...(resource.meta as object | undefined), versionId: String(version), lastUpdated } };
      const parts = Array.isArray(resource.participant) ? (resource.participant as { actor?: { reference?: string } }[]) : [];
      const ref = (t: string) => parts.map((p) => p.actor?.reference ?? '').filter((r) => r.startsWith(`${t}/`)).map((r) => r.slice(t.length + 1));
      const start = typeof resource.start === 'string' ? new Date(Date.parse(resource.start)).toISOString() : null;
      this.db
        .prepare(
          `INSERT INTO resources (type, id, version, last_updated, start, status, patient, practitioner, deleted, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
           ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, last_updated = excluded.last_updated, start = excluded.start, status = excluded.status,
             patient = excluded.patient, practitioner = excluded.practitioner, deleted = 0, json = excluded.json`,
        )
        .run(type, resource.id, version, lastUpdated, start, typeof resource.status === 'string' ? resource.status : null, ref('Patient')[0] ?? null, ref('Practitioner').join(',') || null, JSON.stringify(stored));
      this.db.prepare('DELETE FROM identifiers WHERE type = ? AND id = ?').run(type, resource.id);
      const ins = this.db.prepare('INSERT OR IGNORE INTO identifiers (type, system, value, id) VALUES (?, ?, ?, ?)');
      for (const i of Array.isArray(resource.identifier) ? (resource.identifier as { system?: unknown; value?: unknown }[]) : []) {
        if (typeof i.value === 'string') ins.run(type, typeof i.system === 'string' ? i.system : '', i.value, resource.id);
      }
      this.tell({ type, id: resource.id, before, after: stored, at: lastUpdated });
      return stored;
    });
  }

  /** Deletes a resource, keeping a tombstone so a read answers 410 Gone. */
  delete(type: DemoType, id: string, lastUpdated: string): boolean {
    return this.transaction(() => {
      const before = this.current(type, id);
      const r = this.db.prepare('UPDATE resources SET deleted = 1, version = version + 1, last_updated = ? WHERE type = ? AND id = ? AND deleted = 0').run(lastUpdated, type, id);
      this.db.prepare('DELETE FROM identifiers WHERE type = ? AND id = ?').run(type, id);
      if (r.changes > 0 && before) this.tell({ type, id, before, after: null, at: lastUpdated });
      return r.changes > 0;
    });
  }

  /** Removes a resource without a trace (hard delete: reads answer 404). `at` (default now) is the time listeners are told. */
  purge(type: DemoType, id: string, at: string = new Date().toISOString()): boolean {
    return this.transaction(() => {
      const before = this.current(type, id);
      this.db.prepare('DELETE FROM identifiers WHERE type = ? AND id = ?').run(type, id);
      const gone = this.db.prepare('DELETE FROM resources WHERE type = ? AND id = ?').run(type, id).changes > 0;
      if (before) this.tell({ type, id, before, after: null, at });
      return gone;
    });
  }

  /** Runs a search: one page of matches and the total. */
  search(q: StoreQuery): { resources: FhirResource[]; total: number } {
    const where = ['r.type = ?', 'r.deleted = 0'];
    const args: unknown[] = [q.type];
    if (q.ids) {
      where.push(`r.id IN (${q.ids.map(() => '?').join(',') || "''"})`);
      args.push(...q.ids);
    }
    for (const [op, v] of q.start ?? []) {
      where.push(`r.start ${OPS[op]} ?`);
      args.push(v);
    }
    for (const [op, v] of q.lastUpdated ?? []) {
      where.push(`r.last_updated ${OPS[op]} ?`);
      args.push(v);
    }
    if (q.status) {
      where.push(`r.status IN (${q.status.map(() => '?').join(',')})`);
      args.push(...q.status);
    }
    if (q.patient) {
      where.push('r.patient = ?');
      args.push(q.patient);
    }
    if (q.practitioner) {
      where.push(`(${q.practitioner.map(() => "(',' || r.practitioner || ',') LIKE ?").join(' OR ')})`);
      args.push(...q.practitioner.map((p) => `%,${p},%`));
    }
    if (q.identifier) {
      where.push(`EXISTS (SELECT 1 FROM identifiers i WHERE i.type = r.type AND i.id = r.id AND i.value = ?${q.identifier.system === null ? '' : ' AND i.system = ?'})`);
      args.push(q.identifier.value);
      if (q.identifier.system !== null) args.push(q.identifier.system);
    }
    const sqlWhere = where.join(' AND ');
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM resources r WHERE ${sqlWhere}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT json FROM resources r WHERE ${sqlWhere} ORDER BY r.start, r.id LIMIT ? OFFSET ?`).all(...args, q.count, q.offset) as { json: string }[];
    return { resources: rows.map((r) => JSON.parse(r.json) as FhirResource), total };
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }
}
