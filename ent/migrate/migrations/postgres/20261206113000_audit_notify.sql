-- Tell every listening instance when audit events commit (internal/events):
-- a NOTIFY is delivered at commit, never for a transaction that rolled back,
-- and once per transaction however many rows it wrote. Written by hand:
-- Ent's schema has no triggers.
CREATE FUNCTION "audit_events_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('safedelete_queue', current_schema() || ' audit');
  RETURN NULL;
END
$$;
-- Create trigger "audit_events_notify" on table: "audit_events"
CREATE TRIGGER "audit_events_notify" AFTER INSERT ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_notify"();
