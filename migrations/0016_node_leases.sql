-- Node leases (issue 15): every gateway renews its row while it runs. A
-- node whose lease has expired is taken for dead: another node closes its
-- open calls as interrupted (docs/architecture.md, "Nodes and leases").
-- Times are the database's (now()), so the nodes' clocks do not matter.
CREATE TABLE node_leases (
    node        text        PRIMARY KEY,
    started_at  timestamptz NOT NULL,   -- when this run of the node took the lease
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
