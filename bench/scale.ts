/**
 * Scale benchmark (issue 8): 1,000 connections × 500 appointments each, synced by the scheduler
 * into one store. A cycle is every connection synced once; the first is the (silent) baseline, the
 * next ones each see 2% of appointments and 1% of patients changed. Targets: one steady cycle
 * ≤ 60 s on 2 cores and peak RSS ≤ 300 MB.
 *
 * The EHRs are synthetic: each connection's schedule is computed from (connection, cycle) when read,
 * so the EHR side holds nothing in this process and RSS measures ehrsync alone.
 *
 *   npm run bench -- scale [--connections N] [--appointments N] [--cycles N] [--database URL]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectorCapabilities, EhrConnector, PatientQuery, PatientsRead, ScheduleRead } from '../src/connectors/connector.js';
import type { Clock } from '../src/domain/clock.js';
import type { AppointmentRecord, PatientRecord } from '../src/domain/records.js';
import { openStore } from '../src/store/open.js';
import { SyncScheduler } from '../src/sync/scheduler.js';
import { gc, median, min, round } from './stats.js';

const HOUR = 3_600_000;
const START = Date.UTC(2026, 10, 2, 12);

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : fallback;
}

/** A clinic computed on demand: appointment i of connection c, as it stands at `cycle`. */
class SyntheticEhr implements EhrConnector {
  readonly kind = 'synthetic';
  readonly capabilities: ConnectorCapabilities = { patientsChangedSince: true, writes: false, push: false };
  constructor(
    private readonly c: number,
    private readonly size: number,
    private readonly state: { cycle: number },
  ) {}

  private patient(p: number): PatientRecord {
    const changed = this.state.cycle > 0 && (p + this.c + this.state.cycle) % 100 === 0;
    return {
      ehr_patient_id: `p${p}`,
      mrn: String(100_000 + p),
      first_name: `First${p}`,
      last_name: `Last${this.c}`,
      dob: '1980-01-01',
      sex: p % 2 ? 'F' : 'M',
      phone: changed ? `555-9${String(this.state.cycle).padStart(3, '0')}` : '555-0100',
      cell_phone: null,
      email: null,
      address_street: '1 Main St',
      address_line2: null,
      address_city: 'Springfield',
      address_state: 'IL',
      address_zip: '62701',
    };
  }

  private appointment(i: number): AppointmentRecord {
    const changed = this.state.cycle > 0 && (i + this.c + this.state.cycle) % 50 === 0;
    const p = i % Math.ceil(this.size * 0.6);
    return {
      ehr_appointment_id: `a${i}`,
      patient_ehr_id: `p${p}`,
      patient_mrn: String(100_000 + p),
      patient_name: `First${p} Last${this.c}`,
      datetime: new Date(START + HOUR + i * HOUR).toISOString(),
      timezone: 'America/Chicago',
      duration: 30,
      location: String(i % 4),
      status: changed ? (this.state.cycle % 2 ? 'arrived' : 'booked') : 'booked',
      provider_ehr_id: `dr${i % 6}`,
      provider_name: `Dr. Provider ${i % 6}`,
      secondary_provider_ehr_id: null,
      appointment_type: 'FOLLOW-UP',
      appointment_mode: 'office',
    };
  }

  async readSchedule(): Promise<ScheduleRead> {
    const appointments = Array.from({ length: this.size }, (_, i) => this.appointment(i));
    return { appointments, patients: [], providers: [], quarantined: [] };
  }

  async readPatients(query: PatientQuery): Promise<PatientsRead> {
    const count = Math.ceil(this.size * 0.6);
    const ids = 'ids' in query ? query.ids.map((id) => Number(id.slice(1))) : Array.from({ length: count }, (_, p) => p).filter((p) => this.state.cycle > 0 && (p + this.c + this.state.cycle) % 100 === 0);
    return { patients: ids.map((p) => this.patient(p)), quarantined: [] };
  }

  async readAppointment(): Promise<{ found: false }> {
    return { found: false };
  }
}

class StepClock implements Clock {
  constructor(public ms: number) {}
  now(): number {
    return this.ms;
  }
}

export default async function run(args: string[]): Promise<Record<string, unknown>> {
  const connections = Number(arg(args, 'connections', '1000'));
  const size = Number(arg(args, 'appointments', '500'));
  const cycles = Math.max(2, Number(arg(args, 'cycles', '3')));
  const concurrency = Number(arg(args, 'concurrency', '8'));
  const dir = mkdtempSync(join(tmpdir(), 'ehrsync-scale-'));
  const database = arg(args, 'database', join(dir, 'scale.db'));
  const store = await openStore(database);
  const clock = new StepClock(START);
  const state = { cycle: 0 };
  try {
    const account = await store.createAccount({ name: 'Scale', clientId: `ci_scale_${Date.now()}`, clientSecretHash: '-', now: clock.now() });
    const index = new Map<string, number>();
    for (let c = 0; c < connections; c++) {
      const conn = await store.createConnection({ accountId: account.id, connector: 'synthetic', referenceId: `clinic-${c}`, timezone: 'America/Chicago', windowPastDays: 1, windowFutureDays: 30, syncIntervalMs: 60_000, now: clock.now() });
      index.set(conn.id, c);
    }
    const ehrs = new Map<string, SyntheticEhr>();
    const scheduler = new SyncScheduler(
      { store, clock, connectorFor: (conn) => ehrs.get(conn.id) ?? ehrs.set(conn.id, new SyntheticEhr(index.get(conn.id) ?? 0, size, state)).get(conn.id)! },
      { owner: 'bench', concurrency, sleep: async () => {} },
    );
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    const times: number[] = [];
    let events = 0;
    try {
      for (; state.cycle < cycles; state.cycle++) {
        gc();
        const t0 = performance.now();
        // One cycle: keep every slot busy until no connection is due at this instant.
        for (;;) {
          if ((await scheduler.tick()) > 0) continue;
          const idle = await Promise.race([scheduler.idle().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2))]);
          if (idle && (await scheduler.tick()) === 0) break;
        }
        await scheduler.idle();
        const ms = performance.now() - t0;
        times.push(ms);
        console.log(`cycle ${state.cycle}${state.cycle === 0 ? ' (baseline)' : ''}: ${round(ms / 1000, 2)} s, rss ${round(process.memoryUsage().rss / 2 ** 20, 0)} MB`);
        clock.ms += 61_000;
      }
      events = (await store.listEvents({ accountId: account.id, afterSeq: 0, limit: 1_000_000 })).length;
    } finally {
      clearInterval(sampler);
      await scheduler.stop();
    }
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const steady = times.slice(1);
    const result = {
      connections,
      records: connections * size,
      cycle_s: round(min(steady) / 1000, 2),
      cycle_median_s: round(median(steady) / 1000, 2),
      baseline_cycle_s: round((times[0] as number) / 1000, 2),
      records_per_s: Math.round((connections * size) / (min(steady) / 1000)),
      events,
      rss_mb: round(peakRss / 2 ** 20, 0),
      target_cycle_s: 60,
      target_rss_mb: 300,
    };
    console.log(`steady cycle: min ${result.cycle_s} s, median ${result.cycle_median_s} s; ${events} events; peak RSS ${result.rss_mb} MB`);
    return result;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
