-- The admin console's "handled" mark on a voicemail (issue 11): a call's
-- voicemail (its last `voicemail` event) is handled when a row is here.
-- Admins and supervisors set and clear it; who and when is kept, and the
-- audit log has every change.
CREATE TABLE voicemail_handled (
    call_id    uuid PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    handled_at timestamptz NOT NULL DEFAULT now(),
    handled_by text        NOT NULL
);
