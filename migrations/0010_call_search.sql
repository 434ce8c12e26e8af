-- Call search (issue 11, hotline-store's call_search.rs): newest first with
-- keyset pagination, `ORDER BY started_at DESC, id DESC` and a cursor
-- `(started_at, id) < (…)`, so that every page, the first and the ten
-- thousandth, is one index range scan that stops after `limit` rows.
--
-- Each filter that can be selective has an index that begins with it and
-- then carries the order, so "this caller's calls, newest first" reads only
-- that caller's entries. Filters that match a large share of the calls
-- (an outcome, a queue, an issue type prefix) are served by walking the time
-- index and skipping the others: half of the rows match, so 50 matches are
-- found after about 100 entries. docs/performance.md has the plans and the
-- timings over 1,000,000 calls.
--
-- Cost on the writer: a row whose queue, agent, outcome or disposition
-- changes cannot be a HOT update; those columns change a few times per
-- call, not per event.

-- Replaced by the (started_at, id) and (caller, started_at, id) indexes below,
-- which also serve what these did (retention's `started_at < $1`, erasure's
-- `caller = $1`).
DROP INDEX IF EXISTS calls_started_at;
DROP INDEX IF EXISTS calls_caller;

CREATE INDEX calls_started_id ON calls (started_at DESC, id DESC);
CREATE INDEX calls_caller_started ON calls (caller, started_at DESC, id DESC);
CREATE INDEX calls_agent_started ON calls (agent_id, started_at DESC, id DESC)
    WHERE agent_id IS NOT NULL;
CREATE INDEX calls_queue_started ON calls (queue, started_at DESC, id DESC)
    WHERE queue IS NOT NULL;
CREATE INDEX calls_outcome_started ON calls (outcome, started_at DESC, id DESC);
CREATE INDEX calls_disposition_started ON calls (disposition, started_at DESC, id DESC)
    WHERE disposition IS NOT NULL;
-- A version (a content hash) names its flow, so `flow_version` alone, or
-- with `flow`, is served by its own index; a version that matches nothing
-- would otherwise walk the whole time index.
CREATE INDEX calls_flow_started ON calls (flow, started_at DESC, id DESC);
CREATE INDEX calls_flow_version_started ON calls (flow_version, started_at DESC, id DESC);
-- An issue type filter matches the type and everything under it
-- (`subscription` → `subscription.refund`): a range on this column in
-- byte order (COLLATE "C"), whatever the database's collation.
CREATE INDEX calls_issue_type_started ON calls ((issue_type COLLATE "C"), started_at DESC, id DESC)
    WHERE issue_type IS NOT NULL;
