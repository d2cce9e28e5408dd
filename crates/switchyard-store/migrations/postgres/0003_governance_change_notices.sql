-- Replicas learn about governance changes the same way as about provider changes: a notice on the
-- config channel, queued in the writing transaction and delivered when (and only if) it commits. The
-- payload is the schema, which listeners compare with their own. Usage counters are excluded: they
-- change on every flush and live in Redis when several replicas run.
CREATE FUNCTION governance_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchyard_config_changed', current_schema());
    RETURN NULL;
END;
$$;

CREATE TRIGGER governance_virtual_keys_changed AFTER INSERT OR UPDATE OR DELETE ON governance_virtual_keys
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
CREATE TRIGGER governance_teams_changed AFTER INSERT OR UPDATE OR DELETE ON governance_teams
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
CREATE TRIGGER governance_customers_changed AFTER INSERT OR UPDATE OR DELETE ON governance_customers
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
CREATE TRIGGER governance_price_overrides_changed AFTER INSERT OR UPDATE OR DELETE ON governance_price_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
CREATE TRIGGER governance_settings_changed AFTER INSERT OR UPDATE OR DELETE ON governance_settings
    FOR EACH STATEMENT EXECUTE FUNCTION governance_changed();
