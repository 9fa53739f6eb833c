-- 003_lease_index: the index that counts an endpoint's leased deliveries holds only leased rows
-- (at most the in-flight count) instead of every pending one: inserting a backlog no longer
-- writes it, and the planner cannot pick it for the per-key ordering check, which
-- deliveries_pending_order serves.
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_leased ON deliveries(endpoint_id, lease_until) WHERE status = 'pending' AND lease_until IS NOT NULL;
