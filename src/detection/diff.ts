/**
 * @module detection/diff — what changed between the projection (last known state) and a fresh read.
 * Pure and hot: one Map lookup and a fixed list of `!==` comparisons per record, no allocation for
 * records that did not change (benchmark: `npm run bench -- diff`).
 */

/** A record as the projection holds it: ehrsync's own id for it plus its last known state. */
export interface Projected<T> {
  /** ehrsync's stable id (32 hex). */
  id: string;
  record: T;
}

/** One record whose payload-visible fields changed. */
export interface Changed<T, F extends keyof T> {
  before: Projected<T>;
  after: T;
  /** Changed tracked fields, in the order of the tracked list (the payload's order). */
  fields: F[];
}

/** The outcome of a diff. */
export interface RecordDiff<T, F extends keyof T> {
  /** Keys not in the projection. */
  created: T[];
  /** Keys whose tracked fields changed. */
  changed: Changed<T, F>[];
  /** Keys where only untracked fields changed: the projection is refreshed, nobody is told. */
  refreshed: Projected<T>[];
}

/**
 * Diffs a read against the projection. Keys missing from `current` are not reported: absence from
 * a read is not a deletion (DESIGN §4) and is handled by the caller with a direct read.
 *
 * @param tracked fields whose change is an event (payload fields)
 * @param untracked fields kept in the projection whose change alone is not an event
 */
export function diffRecords<T, F extends keyof T>(
  previous: ReadonlyMap<string, Projected<T>>,
  current: ReadonlyMap<string, T>,
  tracked: readonly F[],
  untracked: readonly (keyof T)[],
): RecordDiff<T, F> {
  const created: T[] = [];
  const changed: Changed<T, F>[] = [];
  const refreshed: Projected<T>[] = [];
  const nTracked = tracked.length;
  const nUntracked = untracked.length;
  for (const [key, after] of current) {
    const before = previous.get(key);
    if (before === undefined) {
      created.push(after);
      continue;
    }
    const old = before.record;
    let fields: F[] | null = null;
    for (let i = 0; i < nTracked; i++) {
      const f = tracked[i] as F;
      if (old[f] !== after[f]) (fields ??= []).push(f);
    }
    if (fields !== null) {
      changed.push({ before, after, fields });
      continue;
    }
    for (let i = 0; i < nUntracked; i++) {
      const f = untracked[i] as keyof T;
      if (old[f] !== after[f]) {
        refreshed.push({ id: before.id, record: after });
        break;
      }
    }
  }
  return { created, changed, refreshed };
}
