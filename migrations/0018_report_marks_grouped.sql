-- The reports' dirty marks (0013) with one probe per caller, issue type
-- and week of changed calls instead of one per changed call.
--
-- 0013 joined every changed call with every earlier call of its caller and
-- issue type within 7 days. A caller with many calls (withheld numbers
-- arrive as one `anonymous` caller; a load test places thousands from one
-- number) made a batch of N changed calls cost N × (that caller's calls in
-- a week): at 100 new calls a second from one caller the record writer's
-- batches took over a second each by the 4,000th call, the event channel
-- filled, and live calls waited on it (docs/performance.md, run 14).
--
-- Issue types are matched with `=` (and a NULL with a NULL in a branch of
-- its own) rather than `IS NOT DISTINCT FROM`, which the index
-- calls_caller_issue_started cannot serve: each probe reads that caller
-- and issue type within the window, not the caller's whole history.
--
-- The hours marked are the same: for changed calls of one caller and issue
-- type whose start times lie within one 7-day bucket (spread under 7 days),
-- the union of their windows [start - 7 days, start) is the one window
-- [earliest - 7 days, latest).
CREATE OR REPLACE FUNCTION report_mark_slots(changed_calls jsonb) RETURNS void LANGUAGE sql AS $$
    WITH n AS (
        SELECT caller, issue_type, started_at
          FROM jsonb_to_recordset(changed_calls) AS n(caller text, issue_type text, started_at timestamptz)
         WHERE started_at IS NOT NULL
    ), g AS (
        SELECT caller, issue_type, min(started_at) AS lo, max(started_at) AS hi
          FROM n
         WHERE caller IS NOT NULL
         GROUP BY caller, issue_type, floor(extract(epoch FROM started_at) / 604800)
    )
    INSERT INTO report_dirty (slot)
    SELECT DISTINCT s FROM (
        SELECT date_trunc('hour', n.started_at, 'UTC') AS s FROM n
        UNION
        SELECT date_trunc('hour', p.started_at, 'UTC')
          FROM g
          JOIN calls p ON p.caller = g.caller AND p.issue_type = g.issue_type
                      AND p.started_at >= g.lo - interval '7 days'
                      AND p.started_at < g.hi
        UNION
        SELECT date_trunc('hour', p.started_at, 'UTC')
          FROM g
          JOIN calls p ON p.caller = g.caller AND p.issue_type IS NULL AND g.issue_type IS NULL
                      AND p.started_at >= g.lo - interval '7 days'
                      AND p.started_at < g.hi
    ) x ORDER BY s
    ON CONFLICT (slot) DO UPDATE SET slot = EXCLUDED.slot;
$$;
