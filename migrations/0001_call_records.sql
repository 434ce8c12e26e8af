-- Call records: one row per call, its ordered events, its recordings.
-- The `calls` row is derived from `call_events` by the writer (hotline-store),
-- deterministically, so replaying events never changes a finished row.

CREATE TABLE calls (
    id                uuid PRIMARY KEY,
    sip_call_id       text        NOT NULL,
    node              text,                   -- the gateway that handled it
    caller            text,
    caller_name       text,
    callee            text,
    transport         text,                   -- udp / tcp
    source            text,                   -- signalling peer address
    started_at        timestamptz,
    answered_at       timestamptz,
    ended_at          timestamptz,
    ended_by          text CHECK (ended_by IN ('caller', 'gateway', 'agent', 'timeout')),
    hangup_cause      text,
    flow              text,
    flow_version      text,
    language          text,
    issue_type        text,
    outcome           text CHECK (outcome IN ('self_served', 'queued', 'abandoned', 'answered',
                                              'voicemail', 'callback', 'transferred', 'failed')),
    queue             text,
    queued_at         timestamptz,
    agent_id          text,
    agent_answered_at timestamptz,
    talk_seconds      double precision,       -- answered_at -> ended_at
    recording_id      uuid,                   -- recordings.id (no FK: rows arrive in either order)
    events            integer     NOT NULL DEFAULT 0, -- count of call_events rows
    last_seq          integer,                -- events = last_seq + 1 means no gap
    complete          boolean     NOT NULL DEFAULT false -- call_ended seen
);

CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_open ON calls (node) WHERE ended_at IS NULL;
CREATE INDEX calls_caller ON calls (caller);

CREATE TABLE call_events (
    call_id uuid        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq     integer     NOT NULL CHECK (seq >= 0),
    at      timestamptz NOT NULL,
    kind    text        NOT NULL,
    node    text,                               -- IVR node id, when one applies
    data    jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (call_id, seq)
);

CREATE INDEX call_events_kind_at ON call_events (kind, at);

CREATE TABLE recordings (
    id          uuid PRIMARY KEY,
    call_id     uuid    NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    path        text    NOT NULL,
    channels    integer NOT NULL,
    sample_rate integer NOT NULL,
    duration_ms bigint  NOT NULL,
    bytes       bigint  NOT NULL,
    sha256      text
);

CREATE INDEX recordings_call_id ON recordings (call_id);
