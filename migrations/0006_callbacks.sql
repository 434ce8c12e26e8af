-- Booked callbacks (issue 9 #1): stored durably, not in memory. A row is
-- made by the record writer from a call's `callback_requested` event, in
-- the same transaction as the event (or later from the spool), so a
-- booking survives a database outage and a restart like the call record.
-- The agent desk takes rows that are due, offers them to the queue's
-- agents, dials, retries, and writes the state back here.
CREATE TABLE callbacks (
    id              uuid PRIMARY KEY,          -- derived from (call_id, event seq)
    call_id         uuid NOT NULL,             -- the call that booked it
    sip_call_id     text NOT NULL,
    source          text NOT NULL CHECK (source IN ('ivr', 'queue_overflow')),
    queue           text,                      -- whose agents call back (NULL: the desk's first queue)
    number          text NOT NULL CHECK (number ~ '^\+?[0-9]{5,15}$'),
    slot            text NOT NULL,
    due_at          timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'scheduled'
                    CHECK (state IN ('scheduled', 'queued', 'dialing', 'done', 'abandoned', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    agent_id        text,                      -- the last agent who took it
    last_result     text,                      -- e.g. answered, 486, no answer
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX callbacks_due ON callbacks (due_at) WHERE state IN ('scheduled', 'queued', 'dialing');
CREATE INDEX callbacks_call ON callbacks (call_id);
