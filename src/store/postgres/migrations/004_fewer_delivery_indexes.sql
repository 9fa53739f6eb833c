-- 004_fewer_delivery_indexes: every index of deliveries is written again on each update that
-- PostgreSQL cannot make HOT (a lease, an outcome), and SQLite rewrites the partial ones whose
-- predicate changes. Two served no query: deliveries_due (no statement reads pending deliveries
-- by due time across endpoints; every lease starts from an endpoint) and deliveries_order (its
-- prefix, endpoint_id, is served by deliveries_endpoint_created; its per-key order, for pending
-- rows, by deliveries_pending_order).
DROP INDEX deliveries_due;
DROP INDEX deliveries_order;
