/**
 * @module store/concerns/reads — the ProjectionReads port in SQL: the API's cached reads of a
 * connection's projected appointments and patients.
 */
import type { AppointmentRow, PatientRow } from '../../domain/entities.js';
import type { AppointmentFilter, PatientFilter, ProjectionReads } from '../ports.js';
import { toAppointmentRow, toPatientRow } from '../rows.js';
import { all, one } from '../sql/statement.js';
import * as sql from '../statements/reads.js';
import type { SqlContext } from './context.js';

/** Projection reads over SQL. */
export class SqlProjectionReads implements ProjectionReads {
  constructor(private readonly ctx: SqlContext) {}

  async listAppointments(f: AppointmentFilter): Promise<AppointmentRow[]> {
    return (await all(this.ctx.db, sql.selectAppointments(this.ctx.d, f))).map(toAppointmentRow);
  }

  async getAppointment(connectionId: string, id: string): Promise<AppointmentRow | null> {
    const r = await one(this.ctx.db, sql.selectAppointment(connectionId, id));
    return r ? toAppointmentRow(r) : null;
  }

  async getPatient(connectionId: string, id: string): Promise<PatientRow | null> {
    const r = await one(this.ctx.db, sql.selectPatient(connectionId, id));
    return r ? toPatientRow(r) : null;
  }

  async listPatients(f: PatientFilter): Promise<{ rows: PatientRow[]; total: number }> {
    const { count, page } = sql.patientPage(this.ctx.d, f);
    const n = await one<{ n: number }>(this.ctx.db, count);
    const rows = await all(this.ctx.db, page);
    return { rows: rows.map(toPatientRow), total: Number(n?.n ?? 0) };
  }
}
