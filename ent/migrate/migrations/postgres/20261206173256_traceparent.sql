-- Modify "deletion_jobs" table
ALTER TABLE "deletion_jobs" ADD COLUMN "traceparent" character varying NOT NULL DEFAULT '';
-- Modify "object_purges" table
ALTER TABLE "object_purges" ADD COLUMN "traceparent" character varying NOT NULL DEFAULT '';
-- Modify "webhook_deliveries" table
ALTER TABLE "webhook_deliveries" ADD COLUMN "traceparent" character varying NOT NULL DEFAULT '';
