-- 002_hl7_feed (SQLite): what a pushed HL7 v2 feed needs beyond a polled connection's projection.
-- postgres/migrations/002_hl7_feed.sql is the same in PostgreSQL's types.
--
-- hl7_messages: one row per message received (docs/connectors.md, "HL7 v2 feeds"). Its key is how
-- a re-sent message (same MSH-10 from the same sender, after a lost ACK or a crash before it) is
-- recognised and answered again with the same acknowledgment, producing nothing new. It holds ids
-- and outcomes only, never the message (a quarantined message's excerpt is in quarantine).
CREATE TABLE hl7_messages (
  connection_id   TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  sender          TEXT NOT NULL,                -- MSH-3 and MSH-4, as "application|facility"
  control_id      TEXT NOT NULL,                -- MSH-10
  message_type    TEXT NOT NULL,                -- MSH-9.1^MSH-9.2, e.g. SIU^S12
  message_time_ms INTEGER,                      -- MSH-7, when it parses
  outcome         TEXT NOT NULL,                -- applied | stale | unsupported | quarantined
  ack_code        TEXT NOT NULL,                -- AA | AE: what the sender was (and is again) answered
  error_text      TEXT,                         -- the AE's reason (locations only, no values)
  received_at     INTEGER NOT NULL,
  PRIMARY KEY (connection_id, sender, control_id)
);
CREATE INDEX hl7_messages_received ON hl7_messages(received_at);

-- hl7_record_times: per record, the MSH-7 of the newest message applied to it, so a message that
-- arrives late (an interface engine replaying a queue, a second sender) cannot roll it back.
CREATE TABLE hl7_record_times (
  connection_id   TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  kind            TEXT NOT NULL,                -- appointment | patient
  ehr_id          TEXT NOT NULL,
  message_time_ms INTEGER NOT NULL,
  PRIMARY KEY (connection_id, kind, ehr_id)
);
