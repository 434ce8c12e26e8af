-- The desk's mail between nodes (issue 15; docs/architecture.md, "One ACD
-- for the cluster"): a follower's inputs for the ACD leader's desk, and
-- the leader's outputs for the node holding an agent's page or a call.
-- The sender inserts and notifies `hotline_desk` with the recipient's
-- name; the recipient deletes its rows and handles them in id order
-- (one sender inserts one batch at a time, so its mail keeps its order).
-- A node discards what is addressed to it when it starts: that was for
-- calls and pages of its previous life.
CREATE TABLE desk_mail (
    id         bigserial   PRIMARY KEY,
    to_node    text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_mail_to_node ON desk_mail (to_node, id);
