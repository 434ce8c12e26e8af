-- Post-call satisfaction survey (issue 12; docs/call-events.md,
-- "Satisfaction survey").
--
-- A queue setting: after the agent hangs up, the caller is kept on the line
-- to rate the call from 1 to 5 and may leave a short comment.
ALTER TABLE queues ADD COLUMN survey boolean NOT NULL DEFAULT false;

-- Derived from the survey events by the record writer:
-- survey_started -> survey_offered_at, survey_answered -> csat_score,
-- survey_comment -> survey_comment_path. A caller who hangs up before
-- keying a score has survey_offered_at and no csat_score (not a response).
ALTER TABLE calls
    ADD COLUMN survey_offered_at timestamptz,
    ADD COLUMN csat_score smallint CHECK (csat_score BETWEEN 1 AND 5),
    ADD COLUMN survey_comment_path text;
