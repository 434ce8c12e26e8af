-- SIP sources banned by a node's edge policy (issue 13): kept here so a
-- ban outlives a restart (a scanner is not welcomed back by a deploy).
-- One row per node and address; each node writes and reads its own.
-- `until` is the database's time at which the ban lifts by itself.
CREATE TABLE edge_bans (
    node  text        NOT NULL,
    ip    text        NOT NULL,
    until timestamptz NOT NULL,
    PRIMARY KEY (node, ip)
);
