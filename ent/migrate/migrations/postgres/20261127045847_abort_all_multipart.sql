-- Modify "object_purges" table
ALTER TABLE "object_purges" ADD COLUMN "abort_all_multipart" boolean NOT NULL DEFAULT false;
-- Purges that used the "*" sentinel for "every multipart upload of the key" now say so in their own column
UPDATE "object_purges" SET "abort_all_multipart" = true, "multipart_upload_id" = '' WHERE "multipart_upload_id" = '*';
