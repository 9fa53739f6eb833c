/**
 * @module store/concerns/retention — the Retention port in SQL: purging by age what is kept (events
 * whose deliveries are all final, quarantined records, finished writes) and erasing everything
 * stored about one patient.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Retention } from '../ports.js';
import type { SqlRunner } from '../sql/client.js';
import { all, one, run } from '../sql/statement.js';
import * as sql from '../statements/retention.js';
import type { SqlContext } from './context.js';
import { deleteEvents } from './outbox.js';

/** What an erasure deleted. */
type Erased = { events: number; appointments: number; patients: number; quarantined: number; operations: number };

/** Retention and erasure over SQL. */
export class SqlRetention implements Retention {
  constructor(private readonly ctx: SqlContext) {}

  async purgeEvents(before: EpochMs, limit: number): Promise<number> {
    const { d } = this.ctx;
    return this.ctx.db.transaction(async (tx) => {
      const rows = await all<{ seq: number }>(tx, sql.selectPurgeableEvents(d, before, limit));
      if (rows.length === 0) {
        await this.purgeRecordsBeside(tx, before);
        return 0;
      }
      // The events are locked (PostgreSQL): a redelivery locks its event first too, so it waits
      // for this purge and then finds the event gone (not found), never half of it. Lock their
      // deliveries and look again: a redelivery committed before our lock made one pending, and
      // that event must stay.
      const locked = await all<{ event_seq: number; status: string }>(tx, sql.lockEventDeliveries(d, rows.map((r) => Number(r.seq))));
      const pending = new Set(locked.filter((r) => r.status === 'pending').map((r) => Number(r.event_seq)));
      const seqs = rows.map((r) => Number(r.seq)).filter((seq) => !pending.has(seq));
      await deleteEvents(d, tx, seqs);
      // Once per purge, not per batch: callers loop until a call deletes fewer than `limit`, and
      // neither table has an index these deletes could use (each is a scan).
      if (seqs.length < limit) await this.purgeRecordsBeside(tx, before);
      return seqs.length;
    });
  }

  /** Retention of what is kept beside the events: quarantined records, the pushed feed's message log, and finished writes (their requests hold PHI; GET /v1/jobs/:id answers 404 for them after). */
  private async purgeRecordsBeside(tx: SqlRunner, before: EpochMs): Promise<void> {
    await run(tx, sql.deleteOldQuarantine(before));
    await run(tx, sql.deleteFinishedOperations(before));
    await run(tx, sql.deleteOldFeedMessages(before));
  }

  async erasePatient(connectionId: string, patientEhrId: string): Promise<Erased> {
    const { d } = this.ctx;
    return this.ctx.db.transaction(async (tx) => {
      // The finished writes about the patient, whose requests hold PHI: to their record or their
      // appointments (by ehrsync id, or by EHR id within the same kind: FHIR ids are unique per
      // resource type only), and bookings that named their MRN, unless another patient has it too.
      // Their outcome events go too, found by job_id (a failed write's event has no patient id).
      // Writes still running are left to finish (retention purges them later).
      const pat = await one<{ id: string; mrn: string | null }>(tx, sql.selectPatientRecord(connectionId, patientEhrId));
      const appts = await all<{ id: string; ehr_id: string }>(tx, sql.selectPatientAppointments(connectionId, patientEhrId));
      const targetIds = [...(pat ? [String(pat.id)] : []), ...appts.map((a) => String(a.id))];
      const sharedMrn = pat?.mrn == null ? 0 : Number((await one<{ n: number }>(tx, sql.countPatientsWithMrn(connectionId, pat.mrn)))?.n ?? 0);
      const mrn = pat?.mrn != null && sharedMrn === 1 ? pat.mrn : null;
      const appointmentEhrIds = appts.map((a) => String(a.ehr_id));
      const ops = (await all<{ id: string }>(tx, sql.selectErasableOperations(d, connectionId, { targetIds, patientEhrId, appointmentEhrIds, mrn }))).map((r) => String(r.id));
      const seqs = (await all<{ seq: number }>(tx, sql.selectPatientEvents(d, connectionId, patientEhrId, ops))).map((r) => Number(r.seq));
      await deleteEvents(d, tx, seqs);
      const operations = ops.length === 0 ? 0 : await run(tx, sql.deleteOperations(d, ops));
      // A deleted pending delivery may have held back the next event of its key. (A purge deletes
      // only events whose deliveries are all final: nothing it deletes holds anything back.)
      if (seqs.length > 0) this.ctx.queue.forgetScans();
      await run(tx, sql.deletePatientRecordTimes(d, connectionId, patientEhrId, appointmentEhrIds));
      const appointments = await run(tx, sql.deletePatientAppointments(connectionId, patientEhrId));
      const patients = await run(tx, sql.deletePatientRecord(connectionId, patientEhrId));
      // Quarantined raw records are free text: match the patient's id as a JSON string value, or as
      // the end of a FHIR reference ("Patient/<id>"), exactly (a LIKE would ignore case on SQLite).
      const quarantined = await run(tx, sql.deletePatientQuarantine(d, connectionId, patientEhrId));
      return { events: seqs.length, appointments, patients, quarantined, operations };
    });
  }
}
