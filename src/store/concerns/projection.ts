/**
 * @module store/concerns/projection — the Projection and ProviderSettings ports in SQL: what a
 * sync reads before it plans (the connection's projection and its version, its providers), and
 * the account's provider choices.
 */
import type { Projected, ProjectionSnapshot } from '../../domain/projection.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord } from '../../domain/records.js';
import type { Projection, ProviderSettings } from '../ports.js';
import { toProvider } from '../rows.js';
import { all, one } from '../sql/statement.js';
import * as sql from '../statements/projection.js';
import type { SqlContext } from './context.js';

/** A projection row as loadProjection reads it. */
interface ProjectedRow {
  ehr_id: string;
  id: string;
  record: string;
}

/** The projection and providers over SQL. */
export class SqlProjection implements Projection, ProviderSettings {
  constructor(private readonly ctx: SqlContext) {}

  async listProviders(connectionId: string): Promise<ProviderRecord[]> {
    return (await all(this.ctx.db, sql.selectProviders(connectionId))).map(toProvider);
  }

  async setProviderStatus(connectionId: string, providerId: string, status: ProviderRecord['status']): Promise<ProviderRecord | null> {
    const r = await one(this.ctx.db, sql.updateProviderStatus(connectionId, providerId, status));
    return r ? toProvider(r) : null;
  }

  async loadProjection(connectionId: string): Promise<ProjectionSnapshot> {
    const conn = await one<{ projection_version: number }>(this.ctx.db, sql.selectProjectionVersion(connectionId));
    const appointments = new Map<string, Projected<AppointmentRecord>>();
    const patients = new Map<string, Projected<PatientRecord>>();
    for (const r of await all<ProjectedRow>(this.ctx.db, sql.selectProjectedAppointments(connectionId))) {
      appointments.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as AppointmentRecord });
    }
    for (const r of await all<ProjectedRow>(this.ctx.db, sql.selectProjectedPatients(connectionId))) {
      patients.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as PatientRecord });
    }
    return { appointments, patients, version: Number(conn?.projection_version ?? 0) };
  }
}
