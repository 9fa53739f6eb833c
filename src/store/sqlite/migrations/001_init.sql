-- 001_init: accounts, connections, providers, projections, sync runs, quarantine, events, the
-- delivery outbox and its attempts. Times are epoch milliseconds (INTEGER); ids are TEXT.

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
  created_at                  INTEGER NOT NULL
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
  updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_order ON deliveries(endpoint_id, ordering_key, event_seq);
CREATE INDEX deliveries_event ON deliveries(event_seq);

CREATE TABLE attempts (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id      INTEGER NOT NULL REFERENCES deliveries(id),
  attempt          INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  duration_ms      INTEGER NOT NULL,
  status_code      INTEGER,
  error_class      TEXT,
  response_excerpt TEXT,
  outcome          TEXT NOT NULL              -- succeeded | retry | failed
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);

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
