-- 006_key_check_index: nothing to change on SQLite. PostgreSQL's 006 narrows deliveries_pending_seq
-- so its planner cannot use it for the due-heads scan's per-key check; SQLite's planner already
-- answers that check from deliveries_pending_order, and SQLite's scan-start notes (ScanStarts) read
-- deliveries_pending_seq without a next_attempt_at term, which the narrower index would rule out.
-- Kept so both dialects number their migrations alike.
SELECT 1;
