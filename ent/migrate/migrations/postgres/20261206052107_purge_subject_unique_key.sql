-- Modify "object_purges" table
ALTER TABLE "object_purges" ADD COLUMN "owner_id" character varying NOT NULL DEFAULT '', ADD COLUMN "filename" character varying NOT NULL DEFAULT '', ADD COLUMN "size" bigint NOT NULL DEFAULT 0, ADD COLUMN "upload_status" character varying NOT NULL DEFAULT '';
-- Drop index "upload_bucket_object_key" from table: "uploads"
DROP INDEX "upload_bucket_object_key";
-- Create index "upload_bucket_object_key" to table: "uploads"
CREATE UNIQUE INDEX "upload_bucket_object_key" ON "uploads" ("bucket", "object_key") WHERE ((object_key)::text <> ''::text);
