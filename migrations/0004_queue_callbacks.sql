-- Queued callbacks keep the caller's place (issue 6): how often the gateway
-- dials a customer who does not answer, and how long between attempts.
ALTER TABLE queues
    ADD COLUMN callback_attempts   integer NOT NULL DEFAULT 3
        CHECK (callback_attempts BETWEEN 1 AND 10),
    ADD COLUMN callback_retry_secs integer NOT NULL DEFAULT 120
        CHECK (callback_retry_secs >= 0);
