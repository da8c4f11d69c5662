-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Add column "held_until" to table: "deleted_uploads"
ALTER TABLE `deleted_uploads` ADD COLUMN `held_until` datetime NULL;
-- Add column "held_until" to table: "users"
ALTER TABLE `users` ADD COLUMN `held_until` datetime NULL;
-- Add column "held_until" to table: "uploads"
ALTER TABLE `uploads` ADD COLUMN `held_until` datetime NULL;
-- Create "new_deletion_jobs" table
CREATE TABLE `new_deletion_jobs` (`id` text NOT NULL, `owner_id` text NOT NULL, `kind` text NOT NULL, `filter` text NOT NULL DEFAULT (''), `cutoff` datetime NULL, `dry_run` bool NOT NULL DEFAULT (false), `actor` text NOT NULL DEFAULT (''), `via` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('QUEUED'), `matched_count` integer NOT NULL DEFAULT (0), `deleted_count` integer NOT NULL DEFAULT (0), `held_count` integer NOT NULL DEFAULT (0), `failed_count` integer NOT NULL DEFAULT (0), `error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Copy rows from old table "deletion_jobs" to new temporary table "new_deletion_jobs"
INSERT INTO `new_deletion_jobs` (`id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `failed_count`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at`) SELECT `id`, `owner_id`, `kind`, `filter`, `cutoff`, `dry_run`, `actor`, `via`, `request_id`, `status`, `matched_count`, `deleted_count`, `failed_count`, `error`, `created_at`, `started_at`, `finished_at`, `attempts`, `next_attempt_at` FROM `deletion_jobs`;
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
-- Create "holds" table
CREATE TABLE `holds` (`id` text NOT NULL, `user_id` text NOT NULL, `upload_id` text NULL, `reason` text NOT NULL, `placed_by` text NOT NULL, `created_at` datetime NOT NULL, `until` datetime NULL, `released_at` datetime NULL, `released_by` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- Create index "hold_user_id_created_at" to table: "holds"
CREATE INDEX `hold_user_id_created_at` ON `holds` (`user_id`, `created_at`);
-- Create index "hold_upload_id" to table: "holds"
CREATE INDEX `hold_upload_id` ON `holds` (`upload_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
