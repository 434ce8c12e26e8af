-- Reports (issue 12, hotline-store's reports.rs, docs/metrics.md).
--
-- The service-level threshold is a queue setting.
ALTER TABLE queues
    ADD COLUMN service_level_secs integer NOT NULL DEFAULT 20 CHECK (service_level_secs > 0);

-- An hourly rollup of the calls: per UTC hour of `started_at` and per
-- (flow, queue, issue_type, agent_id), the additive parts of every figure
-- (counts, sums, a max). A report reads whole clean hours from here and
-- everything else (the partial hours at the ends of its range, and dirty
-- hours) from `calls`, in one statement, so its totals are those of the
-- calls rows as they are, calls still being written included.
--
-- Hours become dirty in the same transaction as the change that makes them
-- so (statement triggers below): a call row written, updated or deleted
-- (its old and new hour), a call that makes an earlier call of the same
-- caller and issue type within 7 days a repeat (first-contact resolution),
-- a queue's service-level threshold changed. reports.rs rebuilds dirty
-- hours a few at a time (SELECT … FOR UPDATE SKIP LOCKED, so a writer's
-- in-flight mark is never lost). docs/metrics.md, "Design", has the why.
CREATE TABLE report_rollup (
    slot               timestamptz NOT NULL,   -- the UTC hour
    flow               text,
    queue              text,
    issue_type         text,
    agent_id           text,
    offered            bigint NOT NULL,
    answered_by_gateway bigint NOT NULL,
    self_served        bigint NOT NULL,
    sent_to_queue      bigint NOT NULL,
    answered_by_agent  bigint NOT NULL,
    abandoned_in_queue bigint NOT NULL,
    short_abandons     bigint NOT NULL,
    abandoned_in_ivr   bigint NOT NULL,
    ended_in_ivr       bigint NOT NULL,
    voicemail          bigint NOT NULL,
    transferred        bigint NOT NULL,
    failed             bigint NOT NULL,
    answered_within_sl bigint NOT NULL,
    answer_n           bigint NOT NULL,
    answer_sum         double precision NOT NULL,
    wait_n             bigint NOT NULL,
    wait_sum           double precision NOT NULL,
    wait_max           double precision,
    handled            bigint NOT NULL,
    aht_sum            double precision NOT NULL,
    talk_sum           double precision NOT NULL,
    wrap_sum           double precision NOT NULL,
    resolved           bigint NOT NULL,
    fcr                bigint NOT NULL,         -- first-contact resolved, 7-day window
    surveys_offered    bigint NOT NULL,
    csat_n             bigint NOT NULL,
    csat_sum           bigint NOT NULL,
    csat_1             bigint NOT NULL,
    csat_2             bigint NOT NULL,
    csat_3             bigint NOT NULL,
    csat_4             bigint NOT NULL,
    csat_5             bigint NOT NULL
);
CREATE INDEX report_rollup_slot ON report_rollup (slot);

CREATE TABLE report_dirty (
    slot timestamptz PRIMARY KEY
);

-- First-contact resolution: "the same caller, the same issue type, within
-- 7 days after" is one probe of this index per resolved call.
CREATE INDEX calls_caller_issue_started ON calls (caller, issue_type, started_at);

-- Marks dirty the hours of the changed rows (old and new) and the hours of
-- the calls they may make repeats of, or no longer (same caller and issue
-- type, up to 7 days before). One statement, hours in order (two writers
-- never wait on each other in a cycle). ON CONFLICT DO UPDATE, not DO
-- NOTHING: it takes the mark's row lock, so a rebuild that locked the mark
-- first is waited for and the mark is made again after it.
CREATE FUNCTION report_mark_slots(changed_calls jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO report_dirty (slot)
    SELECT DISTINCT s FROM (
        SELECT date_trunc('hour', n.started_at, 'UTC') AS s
          FROM jsonb_to_recordset(changed_calls) AS n(caller text, issue_type text, started_at timestamptz)
         WHERE n.started_at IS NOT NULL
        UNION
        SELECT date_trunc('hour', p.started_at, 'UTC')
          FROM jsonb_to_recordset(changed_calls) AS n(caller text, issue_type text, started_at timestamptz)
          JOIN calls p ON p.caller = n.caller AND p.issue_type IS NOT DISTINCT FROM n.issue_type
                      AND p.started_at >= n.started_at - interval '7 days'
                      AND p.started_at < n.started_at
         WHERE n.caller IS NOT NULL AND n.started_at IS NOT NULL
    ) x ORDER BY s
    ON CONFLICT (slot) DO UPDATE SET slot = EXCLUDED.slot;
$$;

CREATE FUNCTION report_calls_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM report_mark_slots((SELECT coalesce(jsonb_agg(jsonb_build_object(
            'caller', caller, 'issue_type', issue_type, 'started_at', started_at)), '[]')
            FROM new_rows WHERE started_at IS NOT NULL));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM report_mark_slots((SELECT coalesce(jsonb_agg(jsonb_build_object(
            'caller', caller, 'issue_type', issue_type, 'started_at', started_at)), '[]')
            FROM (SELECT caller, issue_type, started_at FROM new_rows
                  UNION SELECT caller, issue_type, started_at FROM old_rows) x
            WHERE started_at IS NOT NULL));
    ELSE
        PERFORM report_mark_slots((SELECT coalesce(jsonb_agg(jsonb_build_object(
            'caller', caller, 'issue_type', issue_type, 'started_at', started_at)), '[]')
            FROM old_rows WHERE started_at IS NOT NULL));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER calls_report_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_calls_changed();
CREATE TRIGGER calls_report_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_calls_changed();
CREATE TRIGGER calls_report_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_calls_changed();

-- A queue's threshold changes, or a queue appears or goes (its calls fall
-- back to 20 s): that queue's hours are rebuilt.
CREATE FUNCTION report_queue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO report_dirty (slot)
        SELECT DISTINCT r.slot FROM report_rollup r
         WHERE r.queue IN (SELECT name FROM (SELECT name, service_level_secs FROM old_rows
                                             EXCEPT SELECT name, service_level_secs FROM new_rows) a
                           UNION SELECT name FROM (SELECT name, service_level_secs FROM new_rows
                                             EXCEPT SELECT name, service_level_secs FROM old_rows) b)
         ORDER BY r.slot
        ON CONFLICT (slot) DO UPDATE SET slot = EXCLUDED.slot;
    ELSE
        INSERT INTO report_dirty (slot)
        SELECT DISTINCT r.slot FROM report_rollup r
         WHERE r.queue IN (SELECT name FROM changed_rows)
         ORDER BY r.slot
        ON CONFLICT (slot) DO UPDATE SET slot = EXCLUDED.slot;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER queues_report_update AFTER UPDATE ON queues
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_queue_changed();
CREATE TRIGGER queues_report_insert AFTER INSERT ON queues
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION report_queue_changed();
CREATE TRIGGER queues_report_delete AFTER DELETE ON queues
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION report_queue_changed();

-- The calls already there: every hour starts dirty and is built on demand
-- (or by `hotline seed-demo`, which builds them all).
INSERT INTO report_dirty (slot)
SELECT DISTINCT date_trunc('hour', started_at, 'UTC') FROM calls WHERE started_at IS NOT NULL;

-- The IVR funnel's rollup, rebuilt with the same dirty hours: per UTC hour
-- and (flow, issue_type), per node (`next_node` NULL: calls that reached
-- it, whose caller gave up at it, that ended self-served) and per step
-- `node` -> `next_node` (calls that took it).
CREATE TABLE report_funnel (
    slot        timestamptz NOT NULL,
    flow        text,
    issue_type  text,
    node        text   NOT NULL,
    next_node   text,
    reached     bigint NOT NULL,
    hung_up     bigint NOT NULL,
    self_served bigint NOT NULL
);
CREATE INDEX report_funnel_slot ON report_funnel (slot);
