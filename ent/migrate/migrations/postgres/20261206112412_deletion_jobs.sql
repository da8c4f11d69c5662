-- Create "deletion_jobs" table
CREATE TABLE "deletion_jobs" ("id" character varying NOT NULL, "owner_id" character varying NOT NULL, "kind" character varying NOT NULL, "filter" text NOT NULL DEFAULT '', "cutoff" timestamptz NULL, "dry_run" boolean NOT NULL DEFAULT false, "actor" character varying NOT NULL DEFAULT '', "via" character varying NOT NULL DEFAULT '', "request_id" character varying NOT NULL DEFAULT '', "status" character varying NOT NULL DEFAULT 'QUEUED', "matched_count" bigint NOT NULL DEFAULT 0, "deleted_count" bigint NOT NULL DEFAULT 0, "failed_count" bigint NOT NULL DEFAULT 0, "error" character varying NOT NULL DEFAULT '', "created_at" timestamptz NOT NULL, "started_at" timestamptz NULL, "finished_at" timestamptz NULL, "attempts" bigint NOT NULL DEFAULT 0, "next_attempt_at" timestamptz NOT NULL, PRIMARY KEY ("id"));
-- Create index "deletionjob_finished_at" to table: "deletion_jobs"
CREATE INDEX "deletionjob_finished_at" ON "deletion_jobs" ("finished_at");
-- Create index "deletionjob_owner_id_created_at" to table: "deletion_jobs"
CREATE INDEX "deletionjob_owner_id_created_at" ON "deletion_jobs" ("owner_id", "created_at");
-- Create index "deletionjob_status_next_attempt_at" to table: "deletion_jobs"
CREATE INDEX "deletionjob_status_next_attempt_at" ON "deletion_jobs" ("status", "next_attempt_at");
