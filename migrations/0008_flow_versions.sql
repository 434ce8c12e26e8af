-- IVR flows as versioned documents (issue 11): every version of every flow,
-- the YAML exactly as saved. Calls run the one published version of each
-- flow (docs/flows.md, "Versions and publishing").

CREATE TABLE flow_versions (
    -- The flow's name: like other ids (no `/`, no `..`), the file stem on export.
    flow        text        NOT NULL
                CHECK (flow ~ '^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$' AND position('..' IN flow) = 0),
    -- 1, 2, 3 … per flow, never reused: history is linear.
    version     integer     NOT NULL CHECK (version >= 1),
    yaml        text        NOT NULL,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    author      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    comment     text        NOT NULL DEFAULT '',
    -- draft: saved, never published; published: what new calls run;
    -- retired: was published, replaced by a later publish.
    status      text        NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'published', 'retired')),
    -- The version the author started from (NULL for a flow's first version).
    based_on    integer,
    -- Set on a rollback: the version whose text this one republishes.
    rollback_of integer,
    -- Where the text came from: console (the admin API), files (the
    -- gateway's flows dir), cli (`hotline flows import`).
    source      text        NOT NULL DEFAULT 'console'
                CHECK (source IN ('console', 'files', 'cli')),
    PRIMARY KEY (flow, version),
    FOREIGN KEY (flow, based_on) REFERENCES flow_versions (flow, version),
    FOREIGN KEY (flow, rollback_of) REFERENCES flow_versions (flow, version)
);

-- At most one published version per flow.
CREATE UNIQUE INDEX flow_versions_one_published ON flow_versions (flow) WHERE status = 'published';
