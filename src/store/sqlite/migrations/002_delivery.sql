-- 002_delivery: what the dispatcher needs. Endpoint health counters and a concurrency cap; the
-- retry cycle a delivery is in (a redelivery starts a new one); attempts tagged with their
-- endpoint for health figures; indexes for leasing due deliveries in per-key order.

ALTER TABLE endpoints ADD COLUMN max_concurrency INTEGER;           -- NULL: the dispatcher's default
ALTER TABLE endpoints ADD COLUMN disabled_at INTEGER;
ALTER TABLE endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN last_success_at INTEGER;
ALTER TABLE endpoints ADD COLUMN last_failure_at INTEGER;

-- attempts counts every attempt ever made (webhook-attempt); retry_from is its value when the
-- current retry cycle began, so the policy's schedule restarts on a redelivery.
ALTER TABLE deliveries ADD COLUMN retry_from INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_pending_order ON deliveries(endpoint_id, ordering_key, event_seq) WHERE status = 'pending';
CREATE INDEX deliveries_pending_seq ON deliveries(endpoint_id, event_seq) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(endpoint_id, lease_until) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_created ON deliveries(endpoint_id, created_at);

ALTER TABLE attempts ADD COLUMN endpoint_id TEXT;
CREATE INDEX attempts_endpoint ON attempts(endpoint_id, started_at);
