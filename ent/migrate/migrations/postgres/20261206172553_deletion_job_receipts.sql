-- Modify "deleted_uploads" table
ALTER TABLE "deleted_uploads" ADD COLUMN "deletion_job_id" character varying NOT NULL DEFAULT '';
-- Modify "deletion_jobs" table
ALTER TABLE "deletion_jobs" ADD COLUMN "pending_receipts" bigint NOT NULL DEFAULT 0, ADD COLUMN "receipt" text NOT NULL DEFAULT '';
-- Modify "deletion_receipts" table
ALTER TABLE "deletion_receipts" ADD COLUMN "deletion_job_id" character varying NOT NULL DEFAULT '';
-- Create index "deletionreceipt_deletion_job_id_upload_id" to table: "deletion_receipts"
CREATE INDEX "deletionreceipt_deletion_job_id_upload_id" ON "deletion_receipts" ("deletion_job_id", "upload_id");
-- Modify "object_purges" table
ALTER TABLE "object_purges" ADD COLUMN "deletion_job_id" character varying NOT NULL DEFAULT '';
