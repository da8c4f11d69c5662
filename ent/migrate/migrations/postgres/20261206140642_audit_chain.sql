-- Modify "audit_events" table
ALTER TABLE "audit_events" ADD COLUMN "seq" bigint NULL, ADD COLUMN "prev_hash" bytea NULL, ADD COLUMN "hash" bytea NULL;
-- Create "audit_chains" table
CREATE TABLE "audit_chains" ("owner_id" character varying NOT NULL, "seq" bigint NOT NULL DEFAULT 0, "hash" bytea NULL, "pruned_seq" bigint NOT NULL DEFAULT 0, PRIMARY KEY ("owner_id"));
