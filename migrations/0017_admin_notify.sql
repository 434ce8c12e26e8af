-- Admin changes reach every gateway (issue 15): a change to agents, queues
-- or queue membership, by any node's admin API or by the `hotline agents`
-- command, notifies `hotline_admin` in the same transaction; every gateway
-- LISTENs and reloads its routing (the desk's queues and agents).
CREATE FUNCTION hotline_admin_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hotline_admin', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER agents_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION hotline_admin_notify();
CREATE TRIGGER queues_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON queues
    FOR EACH STATEMENT EXECUTE FUNCTION hotline_admin_notify();
CREATE TRIGGER queue_members_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON queue_members
    FOR EACH STATEMENT EXECUTE FUNCTION hotline_admin_notify();
