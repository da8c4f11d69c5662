-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_deleted_uploads" table
CREATE TABLE `new_deleted_uploads` (`id` text NOT NULL, `owner_id` text NOT NULL, `filename` text NOT NULL, `content_type` text NOT NULL, `size` integer NOT NULL, `status` text NOT NULL, `bucket` text NOT NULL DEFAULT (''), `object_key` text NOT NULL DEFAULT (''), `multipart_upload_id` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `deleted_at` datetime NOT NULL, `purge_at` datetime NOT NULL, `held_until` datetime NULL, `deletion_job_id` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- Copy rows from old table "deleted_uploads" to new temporary table "new_deleted_uploads"
INSERT INTO `new_deleted_uploads` (`id`, `owner_id`, `filename`, `content_type`, `size`, `status`, `bucket`, `object_key`, `multipart_upload_id`, `created_at`, `deleted_at`, `purge_at`, `held_until`) SELECT `id`, `owner_id`, `filename`, `content_type`, `size`, `status`, `bucket`, `object_key`, `multipart_upload_id`, `created_at`, `deleted_at`, `purge_at`, `held_until` FROM `deleted_uploads`;
-- Drop "deleted_uploads" table after copying rows
DROP TABLE `deleted_uploads`;
-- Rename temporary table "new_deleted_uploads" to "deleted_uploads"
ALTER TABLE `new_deleted_uploads` RENAME TO `deleted_uploads`;
-- Create index "deletedupload_owner_id_deleted_at" to table: "deleted_uploads"
CREATE INDEX `deletedupload_owner_id_deleted_at` ON `deleted_uploads` (`owner_id`, `deleted_at`);
-- Create index "deletedupload_purge_at" to table: "deleted_uploads"
CREATE INDEX `deletedupload_purge_at` ON `deleted_uploads` (`purge_at`);
-- Create "new_object_purges" table
CREATE TABLE `new_object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `abort_all_multipart` bool NOT NULL DEFAULT (false), `upload_id` text NOT NULL, `owner_id` text NOT NULL DEFAULT (''), `filename` text NOT NULL DEFAULT (''), `size` integer NOT NULL DEFAULT (0), `upload_status` text NOT NULL DEFAULT (''), `deletion_job_id` text NOT NULL DEFAULT (''), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Copy rows from old table "object_purges" to new temporary table "new_object_purges"
INSERT INTO `new_object_purges` (`id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `attempts`, `next_attempt_at`, `last_error`, `created_at`) SELECT `id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `attempts`, `next_attempt_at`, `last_error`, `created_at` FROM `object_purges`;
-- Drop "object_purges" table after copying rows
DROP TABLE `object_purges`;
-- Rename temporary table "new_object_purges" to "object_purges"
ALTER TABLE `new_object_purges` RENAME TO `object_purges`;
-- Create index "objectpurge_next_attempt_at" to table: "object_purges"
CREATE INDEX `objectpurge_next_attempt_at` ON `object_purges` (`next_attempt_at`);
-- Create index "objectpurge_upload_id" to table: "object_purges"
CREATE INDEX `objectpurge_upload_id` ON `object_purges` (`upload_id`);
-- Create "new_deletion_receipts" table
CREATE TABLE `new_deletion_receipts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `upload_id` text NOT NULL, `owner_id` text NOT NULL, `jws` text NOT NULL, `deletion_job_id` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Copy rows from old table "deletion_receipts" to new temporary table "new_deletion_receipts"
INSERT INTO `new_deletion_receipts` (`id`, `upload_id`, `owner_id`, `jws`, `created_at`) SELECT `id`, `upload_id`, `owner_id`, `jws`, `created_at` FROM `deletion_receipts`;
-- Drop "deletion_receipts" table after copying rows
DROP TABLE `deletion_receipts`;
-- Rename temporary table "new_deletion_receipts" to "deletion_receipts"
ALTER TABLE `new_deletion_receipts` RENAME TO `deletion_receipts`;
-- Create index "deletion_receipts_upload_id_key" to table: "deletion_receipts"
CREATE UNIQUE INDEX `deletion_receipts_upload_id_key` ON `deletion_receipts` (`upload_id`);
-- Create index "deletionreceipt_created_at" to table: "deletion_receipts"
CREATE INDEX `deletionreceipt_created_at` ON `deletion_receipts` (`created_at`);
-- Create index "deletionreceipt_deletion_job_id_upload_id" to table: "deletion_receipts"
CREATE INDEX `deletionreceipt_deletion_job_id_upload_id` ON `deletion_receipts` (`deletion_job_id`, `upload_id`);
-- Create "new_deletion_jobs" table
CREATE TABLE `new_deletion_jobs` (`id` text NOT NULL, `owner_id` text NOT NULL, `kind` text NOT NULL, `filter` text NOT NULL DEFAULT (''), `cutoff` datetime NULL, `dry_run` bool NOT NULL DEFAULT (false), `actor` text NOT NULL DEFAULT (''), `via` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('QUEUED'), `matched_count` integer NOT NULL DEFAULT (0), `deleted_count` integer NOT NULL DEFAULT (0), `held_count` integer NOT NULL DEFAULT (0), `failed_count` integer NOT NULL DEFAULT (0), `pending_receipts` integer NOT NULL DEFAULT (0), `receipt` text NOT NULL DEFAULT (''), `error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Copy rows from old table "deletion_jobs" to new temporary table "new_deletion_jobs"
INSERT INTO `new_deletion_jobs` (`id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `held_count`, `failed_count`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at`) SELECT `id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `held_count`, `failed_count`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at` FROM `deletion_jobs`;
-- Drop "deletion_jobs" table after copying rows
DROP TABLE `deletion_jobs`;
-- Rename temporary table "new_deletion_jobs" to "deletion_jobs"
ALTER TABLE `new_deletion_jobs` RENAME TO `deletion_jobs`;
-- Create index "deletionjob_owner_id_created_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_owner_id_created_at` ON `deletion_jobs` (`owner_id`, `created_at`);
-- Create index "deletionjob_status_next_attempt_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_status_next_attempt_at` ON `deletion_jobs` (`status`, `next_attempt_at`);
-- Create index "deletionjob_finished_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_finished_at` ON `deletion_jobs` (`finished_at`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
