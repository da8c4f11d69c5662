-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_object_purges" table
CREATE TABLE `new_object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `abort_all_multipart` bool NOT NULL DEFAULT (false), `upload_id` text NOT NULL, `owner_id` text NOT NULL DEFAULT (''), `filename` text NOT NULL DEFAULT (''), `size` integer NOT NULL DEFAULT (0), `upload_status` text NOT NULL DEFAULT (''), `deletion_job_id` text NOT NULL DEFAULT (''), `requested_by` text NOT NULL DEFAULT (''), `requested_via` text NOT NULL DEFAULT (''), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `traceparent` text NOT NULL DEFAULT (''));
-- Copy rows from old table "object_purges" to new temporary table "new_object_purges"
INSERT INTO `new_object_purges` (`id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `deletion_job_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at`, `traceparent`) SELECT `id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `owner_id`, `filename`, `size`, `upload_status`, `deletion_job_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at`, `traceparent` FROM `object_purges`;
-- Drop "object_purges" table after copying rows
DROP TABLE `object_purges`;
-- Rename temporary table "new_object_purges" to "object_purges"
ALTER TABLE `new_object_purges` RENAME TO `object_purges`;
-- Create index "objectpurge_next_attempt_at" to table: "object_purges"
CREATE INDEX `objectpurge_next_attempt_at` ON `object_purges` (`next_attempt_at`);
-- Create index "objectpurge_upload_id" to table: "object_purges"
CREATE INDEX `objectpurge_upload_id` ON `object_purges` (`upload_id`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
