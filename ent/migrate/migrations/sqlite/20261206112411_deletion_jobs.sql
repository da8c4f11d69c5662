-- Create "deletion_jobs" table
CREATE TABLE `deletion_jobs` (`id` text NOT NULL, `owner_id` text NOT NULL, `kind` text NOT NULL, `filter` text NOT NULL DEFAULT (''), `cutoff` datetime NULL, `dry_run` bool NOT NULL DEFAULT (false), `actor` text NOT NULL DEFAULT (''), `via` text NOT NULL DEFAULT (''), `request_id` text NOT NULL DEFAULT (''), `status` text NOT NULL DEFAULT ('QUEUED'), `matched_count` integer NOT NULL DEFAULT (0), `deleted_count` integer NOT NULL DEFAULT (0), `failed_count` integer NOT NULL DEFAULT (0), `error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `started_at` datetime NULL, `finished_at` datetime NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Create index "deletionjob_owner_id_created_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_owner_id_created_at` ON `deletion_jobs` (`owner_id`, `created_at`);
-- Create index "deletionjob_status_next_attempt_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_status_next_attempt_at` ON `deletion_jobs` (`status`, `next_attempt_at`);
-- Create index "deletionjob_finished_at" to table: "deletion_jobs"
CREATE INDEX `deletionjob_finished_at` ON `deletion_jobs` (`finished_at`);
