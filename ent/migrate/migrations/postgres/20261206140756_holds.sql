-- Modify "deleted_uploads" table
ALTER TABLE "deleted_uploads" ADD COLUMN "held_until" timestamptz NULL;
-- Modify "deletion_jobs" table
ALTER TABLE "deletion_jobs" ADD COLUMN "held_count" bigint NOT NULL DEFAULT 0;
-- Modify "uploads" table
ALTER TABLE "uploads" ADD COLUMN "held_until" timestamptz NULL;
-- Modify "users" table
ALTER TABLE "users" ADD COLUMN "held_until" timestamptz NULL;
-- Create "holds" table
CREATE TABLE "holds" ("id" character varying NOT NULL, "user_id" character varying NOT NULL, "upload_id" character varying NULL, "reason" text NOT NULL, "placed_by" character varying NOT NULL, "created_at" timestamptz NOT NULL, "until" timestamptz NULL, "released_at" timestamptz NULL, "released_by" character varying NOT NULL DEFAULT '', PRIMARY KEY ("id"));
-- Create index "hold_upload_id" to table: "holds"
CREATE INDEX "hold_upload_id" ON "holds" ("upload_id");
-- Create index "hold_user_id_created_at" to table: "holds"
CREATE INDEX "hold_user_id_created_at" ON "holds" ("user_id", "created_at");
