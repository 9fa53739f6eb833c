-- 006_key_check_index (PostgreSQL only; sqlite/migrations/006 says why SQLite keeps 005's index):
-- the per-key check of the due-heads scan ("no earlier pending delivery of this key to this
-- endpoint") must read the key's own rows through deliveries_pending_order. Before a table has
-- statistics (every new deployment until autovacuum's first ANALYZE), PostgreSQL costed 005's
-- covering deliveries_pending_seq the same for it and picked that one, which walks every earlier
-- pending delivery of the endpoint per check: behind a failing endpoint whose 8,000 deliveries
-- share keys, ~0.06 ms per blocked delivery per lease, and a healthy neighbour got 1/70 of its
-- rate. The due-heads scan compares next_attempt_at (a strict operator, so the predicate below is
-- implied and the index stays usable there); the check does not, so the planner cannot use this
-- index for it, whatever the statistics say. next_attempt_at is NOT NULL: the index holds the
-- same rows as before.
-- Dropped first, like 005: taking the table's strongest lock at the start means the migration
-- waits for running transactions instead of deadlocking with one that read deliveries and then
-- writes it (building under another name first, with the weaker lock, and swapping at the end did).
DROP INDEX deliveries_pending_seq;
CREATE INDEX deliveries_pending_seq ON deliveries(endpoint_id, event_seq, next_attempt_at, lease_until, ordering_key) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
