-- Offers per call in the reports' rollup (docs/metrics.md, "Design").
-- Counted from call_events at every report, the declined and timed-out
-- offers of a 30-day range were most of its time: ~16,000 offer_outcome
-- events on as many scattered pages of call_events. Each call's offers are
-- now summed into its rollup row like the other figures (the agent table
-- still counts them by the offered agent from call_events). Every hour
-- already rolled up is marked dirty: reports read those hours from calls,
-- exactly, until they are rebuilt (`hotline seed-demo` and each report
-- rebuild them).
ALTER TABLE report_rollup
    ADD COLUMN offers_declined bigint NOT NULL DEFAULT 0,
    ADD COLUMN offers_timed_out bigint NOT NULL DEFAULT 0;

INSERT INTO report_dirty (slot)
SELECT DISTINCT slot FROM report_rollup
ON CONFLICT DO NOTHING;
