-- 005_due_heads_covering_index: the index the due-heads scan walks (an endpoint's pending
-- deliveries in event order) also carries what the scan tests on every row it passes — due time,
-- lease, ordering key — so rows it skips (waiting for a retry, leased, or behind an earlier event
-- of their key) are judged from the index without reading the table. A failing endpoint's backlog
-- is mostly such rows, and each lease used to read every one of them.
DROP INDEX deliveries_pending_seq;
CREATE INDEX deliveries_pending_seq ON deliveries(endpoint_id, event_seq, next_attempt_at, lease_until, ordering_key) WHERE status = 'pending';
