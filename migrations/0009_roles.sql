-- Roles and admin console sessions (issue 11).
--
-- One identity table: an admin or a supervisor is an `agents` row with that
-- role. The role says what the admin console (/admin, /api) allows; taking
-- calls is unchanged (a queue member who signs in to the desk at /agent,
-- whatever the role).

ALTER TABLE agents
    ADD COLUMN role text NOT NULL DEFAULT 'agent'
        CHECK (role IN ('admin', 'supervisor', 'agent'));

-- The `hotline_admin` cookie holds a random token; only its SHA-256 is
-- stored (as for agent_sessions). Kept apart from agent_sessions so a desk
-- cookie can never open the admin API, nor an admin cookie the desk.
CREATE TABLE admin_sessions (
    token_hash   text        PRIMARY KEY,               -- hex SHA-256 of the token
    agent        text        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX admin_sessions_agent ON admin_sessions (agent);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

-- The address an audited request came from (admin console and API);
-- NULL for the command line and the gateway's own passes.
ALTER TABLE audit_log ADD COLUMN ip text;
