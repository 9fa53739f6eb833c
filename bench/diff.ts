/**
 * Diff benchmark (docs/design.md §10): 100,000 appointments, 1% changed in one field and 0.5% added,
 * our diff (detection/diff.ts) against microdiff over the same id-keyed objects, interleaved over
 * rounds. Target: our min ≤ 150 ms and microdiff's min / ours ≥ 5.
 */
import diff from 'microdiff';
import type { AppointmentRecord } from '../src/domain/records.js';
import { APPOINTMENT_TRACKED_FIELDS } from '../src/domain/records.js';
import type { Projected } from '../src/domain/projection.js';
import { diffRecords } from '../src/detection/diff.js';
import { gc, median, min, round } from './stats.js';

const RECORDS = 100_000;
const ROUNDS = 9;
/** Targets: our minimum at most this many ms, and microdiff's minimum / ours at least this. */
const TARGET_MIN_MS = 150;
const TARGET_RATIO = 5;
const UNTRACKED = ['patient_ehr_id', 'timezone', 'provider_ehr_id', 'secondary_provider_ehr_id'] as const;

function record(i: number): AppointmentRecord {
  return {
    ehr_appointment_id: `A${i}`,
    patient_ehr_id: `P${i % 20_000}`,
    patient_mrn: String(100_000 + (i % 20_000)),
    patient_name: `Patient ${i % 20_000}`,
    datetime: new Date(Date.UTC(2026, 10, 1) + (i % 2000) * 900_000).toISOString(),
    timezone: 'America/New_York',
    duration: 15 + (i % 4) * 15,
    location: String(i % 12),
    status: 'booked',
    provider_ehr_id: `dr-${i % 40}`,
    provider_name: `Dr. Provider ${i % 40}`,
    secondary_provider_ehr_id: null,
    appointment_type: i % 3 ? 'FOLLOW-UP' : 'NEW',
    appointment_mode: i % 5 ? 'office' : 'telehealth',
  };
}

export default async function run(): Promise<Record<string, unknown>> {
  // Both snapshots are parsed JSON, as in the pipeline: the projection is parsed from the store's
  // rows, the new read from the EHR's response (V8 internalizes short strings in JSON.parse, so
  // equal short values often compare by pointer on both sides, for our diff and microdiff alike).
  const before = JSON.parse(JSON.stringify(Array.from({ length: RECORDS }, (_, i) => record(i)))) as AppointmentRecord[];
  // The new read: 1% changed, 0.5% added, its order partly shuffled, then parsed, so its objects
  // are allocated in the order the EHR returned them (as a real response would be).
  const read: AppointmentRecord[] = before.map((r) => ({ ...r }));
  for (let i = 0; i < RECORDS; i += 100) (read[i] as AppointmentRecord).status = 'checked-in';
  for (let i = 0; i < RECORDS / 200; i++) read.push(record(RECORDS + i));
  for (let i = 0; i < read.length; i += 7) {
    const j = (i * 7919) % read.length;
    [read[i], read[j]] = [read[j] as AppointmentRecord, read[i] as AppointmentRecord];
  }
  const after = JSON.parse(JSON.stringify(read)) as AppointmentRecord[];

  // Both sides get their inputs keyed by id up front; only the comparison is timed.
  const projection = new Map<string, Projected<AppointmentRecord>>(before.map((r) => [r.ehr_appointment_id, { id: r.ehr_appointment_id, record: r }]));
  const current = new Map(after.map((r) => [r.ehr_appointment_id, r]));
  const beforeById = Object.fromEntries(before.map((r) => [r.ehr_appointment_id, r]));
  const afterById = Object.fromEntries(after.map((r) => [r.ehr_appointment_id, r]));

  const ours: number[] = [];
  const theirs: number[] = [];
  for (let round_ = 0; round_ <= ROUNDS; round_++) {
    gc();
    let t = performance.now();
    const d = diffRecords(projection, current, APPOINTMENT_TRACKED_FIELDS, UNTRACKED);
    const oursMs = performance.now() - t;
    if (d.changed.length !== RECORDS / 100 || d.created.length !== RECORDS / 200) throw new Error(`our diff found ${d.changed.length} changed, ${d.created.length} created`);
    gc();
    t = performance.now();
    const m = diff(beforeById, afterById);
    const theirsMs = performance.now() - t;
    const changed = m.filter((c) => c.type === 'CHANGE').length;
    const created = m.filter((c) => c.type === 'CREATE').length;
    if (changed !== RECORDS / 100 || created !== RECORDS / 200) throw new Error(`microdiff found ${changed} changed, ${created} created`);
    if (round_ > 0) {
      // Round 0 warms up the JIT for both.
      ours.push(oursMs);
      theirs.push(theirsMs);
    }
  }
  const result = {
    bench: 'diff',
    records: RECORDS,
    changed: RECORDS / 100,
    added: RECORDS / 200,
    rounds: ROUNDS,
    min_ms: round(min(ours)),
    median_ms: round(median(ours)),
    baseline: 'microdiff',
    baseline_min_ms: round(min(theirs)),
    baseline_median_ms: round(median(theirs)),
    ratio: round(min(theirs) / min(ours), 1),
    target: `min_ms <= ${TARGET_MIN_MS} and ratio >= ${TARGET_RATIO}`,
  };
  console.log(`${RECORDS} appointments, ${RECORDS / 100} changed, ${RECORDS / 200} added; ${ROUNDS} rounds after a warm-up`);
  console.log(`ours:      min ${result.min_ms} ms, median ${result.median_ms} ms  (runs: ${ours.map((x) => Math.round(x)).join(', ')})`);
  console.log(`microdiff: min ${result.baseline_min_ms} ms, median ${result.baseline_median_ms} ms  (runs: ${theirs.map((x) => Math.round(x)).join(', ')})`);
  console.log(`targets: min_ms <= ${TARGET_MIN_MS} ${result.min_ms <= TARGET_MIN_MS ? 'met' : 'NOT met'}; ratio >= ${TARGET_RATIO} ${result.ratio >= TARGET_RATIO ? 'met' : 'NOT met'} (${result.ratio})`);
  return result;
}
