-- Outcomes say what happened (issue 9 #2, docs/call-events.md "Outcomes"):
-- an answered call that ended in the IVR without reaching a node the flow
-- marks `outcome: self_served` is `abandoned_in_ivr` (the caller left) or
-- `ended_in_ivr` (the flow hung up), never `self_served` by default.
ALTER TABLE calls DROP CONSTRAINT IF EXISTS calls_outcome_check;
ALTER TABLE calls ADD CONSTRAINT calls_outcome_check CHECK (outcome IN (
    'self_served', 'abandoned_in_ivr', 'ended_in_ivr', 'queued', 'abandoned',
    'answered', 'voicemail', 'callback', 'transferred', 'failed'));

-- Rows derived under the old default are re-derived from their events by
-- the writer only when a new event arrives; fix the finished ones here.
UPDATE calls c SET outcome = CASE
        WHEN c.hangup_cause = 'flow_ended' THEN 'ended_in_ivr'
        ELSE 'abandoned_in_ivr' END
 WHERE c.complete AND c.outcome = 'self_served' AND c.answered_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM call_events e
                    WHERE e.call_id = c.id AND e.kind = 'outcome'
                      AND e.data->>'outcome' = 'self_served');
