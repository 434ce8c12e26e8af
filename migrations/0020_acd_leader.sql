-- The ACD leader (issue 15; docs/architecture.md, "One ACD for the
-- cluster"): the node holding the advisory lock `ACD_LOCK` on a session
-- of its own writes itself here with the next epoch. PostgreSQL releases
-- the lock when that session ends (the process, the machine or its
-- network gone), and the next node to take it bumps the epoch: a decision
-- stamped with an older epoch is a stale leader's.
CREATE TABLE acd_leader (
    id    int         PRIMARY KEY CHECK (id = 1),
    node  text        NOT NULL,
    epoch bigint      NOT NULL,
    since timestamptz NOT NULL
);
