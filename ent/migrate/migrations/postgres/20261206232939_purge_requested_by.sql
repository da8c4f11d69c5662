-- Modify "object_purges" table
ALTER TABLE "object_purges" ADD COLUMN "requested_by" character varying NOT NULL DEFAULT '', ADD COLUMN "requested_via" character varying NOT NULL DEFAULT '';
