-- 001_schema (SQLite): the whole schema of ehrsync 0.x — accounts, connections, providers,
-- projections, sync runs, quarantine, events, the delivery outbox and its attempts, operations.
-- Times are epoch milliseconds (INTEGER); ids are TEXT. postgres/migrations/001_schema.sql is the
-- same schema in PostgreSQL's types; test/integration/schema-parity.test.ts keeps the two alike
-- and lists where they differ on purpose.
--
-- Squashed: this file replaces migrations 001_init … 006_key_check_index of ehrsync 0.1, and gives
-- exactly the schema they ended with (columns in the same order: those that 002 added come last).
-- A database that applied all six is recognised as current; one that applied only some must be
-- upgraded with the previous release first (store/sql/migrations.ts, CHANGELOG.md). The notes
-- below keep the old migration numbers where other documents cite them.

CREATE TABLE accounts (
  id                 TEXT PRIMARY KEY,
  name               TEXT NOT NULL,
  client_id          TEXT NOT NULL UNIQUE,
  client_secret_hash TEXT NOT NULL,
  created_at         INTEGER NOT NULL
);

CREATE TABLE connections (
  id                   TEXT PRIMARY KEY,
  account_id           TEXT NOT NULL REFERENCES accounts(id),
  connector            TEXT NOT NULL,
  config               TEXT NOT NULL,           -- JSON object
  access_token_hash    TEXT UNIQUE,
  reference_id         TEXT,
  timezone             TEXT NOT NULL,
  window_past_days     INTEGER NOT NULL,
  window_future_days   INTEGER NOT NULL,
  status_map           TEXT,                    -- JSON object or NULL
  sync_interval_ms     INTEGER NOT NULL,
  replay_baseline      INTEGER NOT NULL DEFAULT 0,
  enabled              INTEGER NOT NULL DEFAULT 1,
  baseline_at          INTEGER,
  patient_cursor       TEXT,
  next_sync_at         INTEGER NOT NULL,
  sync_lease_until     INTEGER,
  sync_lease_owner     TEXT,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  projection_version   INTEGER NOT NULL DEFAULT 0,  -- bumped by every projection write; syncs commit only on the version they read
  last_sync_at         INTEGER,
  created_at           INTEGER NOT NULL
);
CREATE INDEX connections_account ON connections(account_id);
CREATE INDEX connections_due ON connections(next_sync_at) WHERE enabled = 1;

CREATE TABLE providers (
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  ehr_id        TEXT NOT NULL,
  id            TEXT NOT NULL UNIQUE,
  name          TEXT,
  npi           TEXT,
  status        TEXT NOT NULL DEFAULT 'active',
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (connection_id, ehr_id)
);

-- The last known normalized state of each appointment and patient, per connection.
CREATE TABLE projection_appointments (
  connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  ehr_id         TEXT NOT NULL,
  id             TEXT NOT NULL UNIQUE,
  patient_ehr_id TEXT,
  start_ms       INTEGER NOT NULL,            -- the appointment's start, for date-range reads
  record         TEXT NOT NULL,               -- JSON AppointmentRecord
  source         TEXT NOT NULL DEFAULT 'ehr_sync', -- ehr_sync | operation (written by ehrsync itself)
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (connection_id, ehr_id)
);
CREATE INDEX projection_appointments_start ON projection_appointments(connection_id, start_ms);

CREATE TABLE projection_patients (
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  ehr_id        TEXT NOT NULL,
  id            TEXT NOT NULL UNIQUE,
  mrn           TEXT NOT NULL,
  record        TEXT NOT NULL,                -- JSON PatientRecord
  source        TEXT NOT NULL DEFAULT 'ehr_sync',
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  PRIMARY KEY (connection_id, ehr_id)
);
CREATE INDEX projection_patients_mrn ON projection_patients(connection_id, mrn);

CREATE TABLE sync_runs (
  id            TEXT PRIMARY KEY,
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  status        TEXT NOT NULL,                -- running | succeeded | failed
  counts        TEXT NOT NULL DEFAULT '{}',   -- JSON {event type: count}
  quarantined   INTEGER NOT NULL DEFAULT 0,
  error_code    TEXT,
  error_message TEXT
);
CREATE INDEX sync_runs_connection ON sync_runs(connection_id, started_at);

CREATE TABLE quarantine (
  id            TEXT PRIMARY KEY,
  connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  sync_run_id   TEXT NOT NULL,
  kind          TEXT NOT NULL,                -- appointment | patient
  ehr_id        TEXT,
  reason        TEXT NOT NULL,
  raw           TEXT NOT NULL,
  created_at    INTEGER NOT NULL
);
CREATE INDEX quarantine_connection ON quarantine(connection_id, created_at);

-- Events: the exact bytes that are signed and sent, written once.
CREATE TABLE events (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  account_id     TEXT NOT NULL,
  connection_id  TEXT NOT NULL,
  type           TEXT NOT NULL,
  ordering_key   TEXT NOT NULL,
  job_id         TEXT,
  patient_ehr_id TEXT,
  created_at     INTEGER NOT NULL,
  body           TEXT NOT NULL
);
CREATE INDEX events_account_created ON events(account_id, created_at);
CREATE INDEX events_connection ON events(connection_id, seq);
CREATE INDEX events_job ON events(job_id) WHERE job_id IS NOT NULL;

CREATE TABLE endpoints (
  id                          TEXT PRIMARY KEY,
  account_id                  TEXT NOT NULL REFERENCES accounts(id),
  url                         TEXT NOT NULL,
  secret                      TEXT NOT NULL,
  previous_secret             TEXT,
  previous_secret_expires_at  INTEGER,
  signature_scheme            TEXT NOT NULL DEFAULT 'cobalt',
  retry_policy                TEXT NOT NULL DEFAULT 'durable',
  event_types                 TEXT NOT NULL,  -- JSON array
  enabled                     INTEGER NOT NULL DEFAULT 1,
  disabled_reason             TEXT,
  failing_since               INTEGER,
  created_at                  INTEGER NOT NULL,
  -- Health counters and a concurrency cap, for the dispatcher (former 002).
  max_concurrency             INTEGER,        -- NULL: the dispatcher's default
  disabled_at                 INTEGER,
  consecutive_failures        INTEGER NOT NULL DEFAULT 0,
  last_success_at             INTEGER,
  last_failure_at             INTEGER
);
CREATE INDEX endpoints_account ON endpoints(account_id);

-- The outbox: one row per (event, endpoint), written in the event's transaction.
CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  event_seq        INTEGER NOT NULL REFERENCES events(seq),
  endpoint_id      TEXT NOT NULL,
  account_id       TEXT NOT NULL,
  ordering_key     TEXT NOT NULL,
  status           TEXT NOT NULL,             -- pending | succeeded | failed | skipped
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  lease_until      INTEGER,
  lease_owner      TEXT,
  last_status_code INTEGER,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  -- attempts counts every attempt ever made (webhook-attempt); retry_from is its value when the
  -- current retry cycle began, so the policy's schedule restarts on a redelivery (former 002).
  retry_from       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_event ON deliveries(event_seq);
CREATE INDEX deliveries_endpoint_created ON deliveries(endpoint_id, created_at);
-- Leasing due deliveries in per-key order. The per-key check ("no earlier pending delivery of this
-- key to this endpoint") reads the key's own rows here.
CREATE INDEX deliveries_pending_order ON deliveries(endpoint_id, ordering_key, event_seq) WHERE status = 'pending';
-- The index the due-heads scan walks (an endpoint's pending deliveries in event order) also carries
-- what the scan tests on every row it passes — due time, lease, ordering key — so rows it skips
-- (waiting for a retry, leased, or behind an earlier event of their key) are judged from the index
-- without reading the table (former 005). PostgreSQL's has a narrower predicate (former 006); not
-- here: SQLite's planner already answers the per-key check from deliveries_pending_order, and the
-- scan-start notes (ScanStarts) read this index without a next_attempt_at term, which the narrower
-- predicate would rule out.
CREATE INDEX deliveries_pending_seq ON deliveries(endpoint_id, event_seq, next_attempt_at, lease_until, ordering_key) WHERE status = 'pending';
-- Counts an endpoint's leased deliveries: holds only leased rows (at most the in-flight count), so
-- inserting a backlog does not write it and the planner cannot pick it for the per-key check
-- (former 003).
CREATE INDEX deliveries_leased ON deliveries(endpoint_id, lease_until) WHERE status = 'pending' AND lease_until IS NOT NULL;
-- Every index of deliveries is written again on updates (SQLite rewrites the partial ones whose
-- predicate changes), so there is none that no statement reads: 004 dropped deliveries_due (pending
-- deliveries by due time across endpoints; every lease starts from an endpoint) and
-- deliveries_order (served by deliveries_endpoint_created and deliveries_pending_order).

CREATE TABLE attempts (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id      INTEGER NOT NULL REFERENCES deliveries(id),
  attempt          INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  duration_ms      INTEGER NOT NULL,
  status_code      INTEGER,
  error_class      TEXT,
  response_excerpt TEXT,
  outcome          TEXT NOT NULL,             -- succeeded | retry | failed
  endpoint_id      TEXT                       -- for endpoint health figures (former 002)
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);
CREATE INDEX attempts_endpoint ON attempts(endpoint_id, started_at);

-- Operations: writes into the EHR requested through the API, run as durable jobs. The id is the
-- job_id of the operation events; the target id is ehrsync's id of the record, known up front.
CREATE TABLE operations (
  id              TEXT PRIMARY KEY,
  account_id      TEXT NOT NULL REFERENCES accounts(id),
  connection_id   TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  kind            TEXT NOT NULL,              -- appointment.create | appointment.update | patient.create | patient.update
  target_id       TEXT NOT NULL,
  target_ehr_id   TEXT,
  input           TEXT NOT NULL,              -- JSON of the validated request
  status          TEXT NOT NULL,              -- queued | running | succeeded | failed
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_run_at     INTEGER NOT NULL,
  lease_until     INTEGER,
  lease_owner     TEXT,
  idempotency_key TEXT,
  request_hash    TEXT NOT NULL,
  error_code      TEXT,
  error_message   TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX operations_idempotency ON operations(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX operations_due ON operations(next_run_at) WHERE status IN ('queued', 'running');
CREATE INDEX operations_connection ON operations(connection_id, created_at);
