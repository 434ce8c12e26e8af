-- Recordings and personal data (issue 13): retention, erasure, an audit log.

-- A recording whose file was deleted (retention or `hotline erase`) keeps
-- its row, marked: the call record still says that there was one, and
-- that it is gone on purpose rather than lost.
ALTER TABLE recordings
    ADD COLUMN deleted_at     timestamptz,
    ADD COLUMN deleted_reason text;

-- Voicemail files have no table of their own (a `voicemail` event holds
-- the path); the ones deleted on purpose are listed here so the retention
-- job does not look at them again.
CREATE TABLE deleted_files (
    path       text PRIMARY KEY,
    call_id    uuid,
    kind       text        NOT NULL,            -- voicemail, recording
    deleted_at timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL             -- retention, erase
);

-- Masking writes `*` over a number, so a masked callback row keeps its
-- length but no digit.
ALTER TABLE callbacks DROP CONSTRAINT IF EXISTS callbacks_number_check;
ALTER TABLE callbacks ADD CONSTRAINT callbacks_number_check
    CHECK (number ~ '^\+?[0-9]{5,15}$' OR number ~ '^\*+$');

-- Calls whose caller has been masked (retention) or erased: the job's
-- cursor, so a million old calls are visited once.
ALTER TABLE calls ADD COLUMN masked_at timestamptz;
CREATE INDEX calls_unmasked_started ON calls (started_at) WHERE masked_at IS NULL;

-- Who did what, for every administrative action that matters later:
-- erasures, retention runs, (later) flow publishes from the admin console.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,               -- e.g. cli:root, admin:<token>, system:retention
    action  text        NOT NULL,               -- e.g. erase_caller, retention
    subject text,                               -- what it acted on (a number is stored masked)
    details jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action_at ON audit_log (action, at);
