-- Agents, queues and who answers them; agents' login sessions and state
-- history; the agent part of the call record.
--
-- Ids that appear in URLs and in the ACD (agent ids, queue names, skills) are
-- restricted to [A-Za-z0-9._@-]; hotline-store checks the same before writing,
-- these CHECKs are the safety net.

CREATE TABLE agents (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._@-]{1,64}$'), -- the login name
    name          text        NOT NULL,
    password_hash text        NOT NULL,                 -- argon2id PHC string ($argon2id$v=19$…)
    skills        text[]      NOT NULL DEFAULT '{}',
    active        boolean     NOT NULL DEFAULT true,    -- inactive: cannot log in, never offered calls
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queues (
    name               text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    strategy           text    NOT NULL DEFAULT 'longest_idle'
                       CHECK (strategy IN ('longest_idle', 'round_robin', 'ring_all', 'skills_priority')),
    max_wait_secs      integer NOT NULL DEFAULT 120 CHECK (max_wait_secs > 0),
    -- voicemail | callback | hangup | queue:<name> (a missing target queue hangs up)
    overflow           text    NOT NULL DEFAULT 'voicemail'
                       CHECK (overflow IN ('voicemail', 'callback', 'hangup')
                              OR overflow ~ '^queue:[A-Za-z0-9._@-]{1,64}$'),
    offer_timeout_secs integer NOT NULL DEFAULT 20 CHECK (offer_timeout_secs > 0),
    wrap_up_secs       integer NOT NULL DEFAULT 30 CHECK (wrap_up_secs >= 0),
    -- the caller of an agent whose browser went away mid-call: back in the
    -- queue (requeue) or told and hung up (release)
    on_agent_lost      text    NOT NULL DEFAULT 'requeue' CHECK (on_agent_lost IN ('requeue', 'release')),
    -- issue type (dotted, longest prefix wins) → the skill it needs, for skills_priority
    issue_skills       jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(issue_skills) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queue_members (
    queue    text    NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    agent    text    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    position integer NOT NULL,                          -- the round-robin order, from 0
    PRIMARY KEY (queue, agent)
);

CREATE INDEX queue_members_agent ON queue_members (agent);

-- The cookie holds a random token; only its SHA-256 is stored, so a read of
-- this table does not yield a usable session.
CREATE TABLE agent_sessions (
    token_hash   text        PRIMARY KEY,               -- hex SHA-256 of the token
    agent        text        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX agent_sessions_agent ON agent_sessions (agent);
CREATE INDEX agent_sessions_expires_at ON agent_sessions (expires_at);

-- History outlives the agent (no FK), like calls.agent_id.
CREATE TABLE agent_state_changes (
    id     bigserial   PRIMARY KEY,
    agent  text        NOT NULL,
    state  text        NOT NULL
           CHECK (state IN ('offline', 'available', 'ringing', 'on_call', 'wrap_up', 'away')),
    reason text,
    at     timestamptz NOT NULL
);

CREATE INDEX agent_state_changes_agent_at ON agent_state_changes (agent, at DESC, id DESC);

-- From the `wrap_up` call event (see docs/call-events.md).
ALTER TABLE calls
    ADD COLUMN wrap_up_seconds double precision,
    ADD COLUMN disposition     text,
    ADD COLUMN notes           text;
