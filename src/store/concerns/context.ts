/**
 * @module store/concerns/context — what every port's SQL implementation is built with: the client,
 * the dialect's fragments, and the delivery queue's hooks for writes that touch the queue.
 */
import type { SqlClient, SqlRunner } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';

/**
 * What the delivery queue needs to hear from writes elsewhere in the store. The SQLite queue keeps
 * in-process scan starts (see queue/scan-starts.ts) that such writes must clear; both queues wake
 * dispatchers when new deliveries may be due.
 */
export interface QueueHooks {
  /**
   * Runs a change that can make older deliveries leasable (a release, a redelivery, a recovery, an
   * endpoint change) in one transaction that also forgets the scan starts before its commit: under
   * SQLite's single writer, no lease can scan between the write and the clear.
   */
  freeing<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Forgets the scan starts, inside a transaction that deleted pending deliveries (erasure). */
  forgetScans(): void;
  /** After a commit that queued deliveries: wakes dispatchers (this process's, and others' on PostgreSQL). */
  notifyDue(): void;
}

/** The shared context of the store's SQL implementations. */
export interface SqlContext {
  db: SqlClient;
  d: Dialect;
  queue: QueueHooks;
}
