-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_webhook_deliveries" table
CREATE TABLE `new_webhook_deliveries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `message_id` text NOT NULL, `upload_id` text NOT NULL, `event_type` text NOT NULL, `payload` text NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `last_status_code` integer NOT NULL DEFAULT (0), `created_at` datetime NOT NULL, `delivered_at` datetime NULL, `traceparent` text NOT NULL DEFAULT (''), `endpoint_id` text NOT NULL, CONSTRAINT `webhook_deliveries_webhook_endpoints_deliveries` FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "webhook_deliveries" to new temporary table "new_webhook_deliveries"
INSERT INTO `new_webhook_deliveries` (`id`, `message_id`, `upload_id`, `event_type`, `payload`, `status`, `attempts`, `next_attempt_at`, `last_error`, `last_status_code`, `created_at`, `delivered_at`, `endpoint_id`) SELECT `id`, `message_id`, `upload_id`, `event_type`, `payload`, `status`, `attempts`, `next_attempt_at`, `last_error`, `last_status_code`, `created_at`, `delivered_at`, `endpoint_id` FROM `webhook_deliveries`;
-- Drop "webhook_deliveries" table after copying rows
DROP TABLE `webhook_deliveries`;
-- Rename temporary table "new_webhook_deliveries" to "webhook_deliveries"
ALTER TABLE `new_webhook_deliveries` RENAME TO `webhook_deliveries`;
-- Create index "webhook_deliveries_message_id_key" to table: "webhook_deliveries"
CREATE UNIQUE INDEX `webhook_deliveries_message_id_key` ON `webhook_deliveries` (`message_id`);
-- Create index "webhookdelivery_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_status_next_attempt_at` ON `webhook_deliveries` (`status`, `next_attempt_at`);
-- Create index "webhookdelivery_endpoint_id_upload_id" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_endpoint_id_upload_id` ON `webhook_deliveries` (`endpoint_id`, `upload_id`);
-- Create index "webhookdelivery_endpoint_id_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_endpoint_id_status_next_attempt_at` ON `webhook_deliveries` (`endpoint_id`, `status`, `next_attempt_at`);
-- Create "new_object_purges" table
CREATE TABLE `new_object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `abort_all_multipart` bool NOT NULL DEFAULT (false), `upload_id` text NOT NULL, `owner_id` text NOT NULL DEFAULT (''), `filename` text NOT NULL DEFAULT (''), `size` integer NOT NULL DEFAULT (0), `upload_status` text NOT NULL DEFAULT (''), `deletion_job_id` text NOT NULL DEFAULT (''), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `traceparent` text NOT NULL DEFAULT (''));
-- Copy rows from old table "object_purges" to new temporary table "new_object_purges"
INSERT INTO `new_object_purges` (`id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `deletion_job_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at`) SELECT `id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `deletion_job_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at` FROM `object_purges`;
-- Drop "object_purges" table after copying rows
DROP TABLE `object_purges`;
-- Rename temporary table "new_object_purges" to "object_purges"
ALTER TABLE `new_object_purges` RENAME TO `object_purges`;
-- Create index "objectpurge_next_attempt_at" to table: "object_purges"
CREATE INDEX `objectpurge_next_attempt_at` ON `object_purges` (`next_attempt_at`);
-- Create index "objectpurge_upload_id" to table: "object_purges"
CREATE INDEX `objectpurge_upload_id` ON `object_purges` (`upload_id`);
-- Create "new_deletion_jobs" table
CREATE TABLE `new_deletion_jobs` (`id` text NOT NULL, `owner_id` text NOT NULL, `kind` text NOT NULL, `filter` text NOT NULL DEFAULT (''), `cutoff` datetime NULL, `dry_run` bool NOT NULL DEFAULT (false), `actor` text NOT NULL DEFAULT (''), `via` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('QUEUED'), `matched_count` integer NOT NULL DEFAULT (0), `deleted_count` integer NOT NULL DEFAULT (0), `held_count` integer NOT NULL DEFAULT (0), `failed_count` integer NOT NULL DEFAULT (0), `pending_receipts` integer NOT NULL DEFAULT (0), `receipt` text NOT NULL DEFAULT (''), `error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `traceparent` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- Copy rows from old table "deletion_jobs" to new temporary table "new_deletion_jobs"
INSERT INTO `new_deletion_jobs` (`id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `held_count`, `failed_count`, `pending_receipts`, `receipt`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at`) SELECT `id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `held_count`, `failed_count`, `pending_receipts`, `receipt`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at` FROM `deletion_jobs`;
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
