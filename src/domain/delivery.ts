/**
 * @module domain/delivery — webhook deliveries as data: one (event, endpoint) delivery, a leased
 * one with what sending it needs, the outcome of an attempt, the attempt log and endpoint health.
 * The store keeps them; the delivery stage produces outcomes from leased deliveries.
 */
import type { EpochMs } from './clock.js';
import type { Endpoint } from './entities.js';

/** Where a delivery stands: `pending` (due or waiting for a retry), `succeeded`, `failed` (exhausted or not retryable), `skipped` (endpoint disabled or deleted). */
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'skipped';

/** One (event, endpoint) delivery. */
export interface DeliveryRow {
  id: number;
  eventSeq: number;
  eventId: string;
  endpointId: string;
  accountId: string;
  orderingKey: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: EpochMs;
  lastStatusCode: number | null;
  lastError: string | null;
  /** `attempts` when the current retry cycle began (a redelivery starts a new cycle). */
  retryFrom: number;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

/** A leased delivery with what sending it needs. `delivery.attempts` already counts this attempt. */
export interface LeasedDelivery {
  delivery: DeliveryRow;
  /** The exact bytes to send. */
  body: string;
  eventCreatedAt: EpochMs;
  endpoint: Endpoint;
}

/** The result of one attempt, as the dispatcher records it. */
export interface DeliveryOutcome {
  deliveryId: number;
  endpointId: string;
  /** The lease owner; an outcome from a worker that lost its lease is recorded as an attempt but does not change the delivery. */
  owner: string;
  attempt: number;
  startedAt: EpochMs;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  /** Truncated response body (never logged). */
  responseExcerpt: string | null;
  /** `retry` keeps the delivery pending until `nextAttemptAt`. */
  result: 'succeeded' | 'retry' | 'failed';
  nextAttemptAt?: EpochMs;
  /** Why it failed or will be retried, for the delivery row. */
  error: string | null;
  /** When set, the endpoint is disabled with this reason and its pending deliveries are skipped. */
  disableEndpoint?: string;
}

/** One recorded attempt. */
export interface AttemptRow {
  id: number;
  deliveryId: number;
  endpointId: string | null;
  attempt: number;
  startedAt: EpochMs;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  responseExcerpt: string | null;
  outcome: 'succeeded' | 'retry' | 'failed';
}

/** Health figures of an endpoint. */
export interface EndpointHealth {
  endpointId: string;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: EpochMs | null;
  /** Attempts since `since`, and how many succeeded. */
  attempts: number;
  succeeded: number;
  /** succeeded / attempts since `since`; null without attempts. */
  successRate: number | null;
  lastSuccessAt: EpochMs | null;
  lastFailureAt: EpochMs | null;
  consecutiveFailures: number;
  failingSince: EpochMs | null;
  /** Deliveries by status, now. */
  pending: number;
  failed: number;
  skipped: number;
}
