-- Offers per offered agent in the reports' rollup (docs/metrics.md,
-- "Design"). The agent table counts declined and timed-out offers by the
-- agent offered, not the agent who answered, so migration 0014's per-call
-- columns (keyed by the answering agent) cannot serve it; counted from
-- call_events at every report they were most of the agent table's time.
-- Per UTC hour of the call's start and (flow, queue, issue_type) of the
-- call, per offered agent: the offers declined and timed out. Rebuilt with
-- the same dirty hours as report_rollup; every hour already rolled up is
-- marked dirty so it gets its rows (reports read dirty hours from calls,
-- exactly, until then).
CREATE TABLE report_offers (
    slot       timestamptz NOT NULL,   -- the UTC hour of the call's start
    flow       text,
    queue      text,
    issue_type text,
    agent_id   text NOT NULL,          -- the agent offered
    declined   bigint NOT NULL,
    timed_out  bigint NOT NULL
);
CREATE INDEX report_offers_slot ON report_offers (slot);

INSERT INTO report_dirty (slot)
SELECT DISTINCT slot FROM report_rollup
ON CONFLICT DO NOTHING;
