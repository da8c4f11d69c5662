-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_object_purges" table
CREATE TABLE `new_object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `abort_all_multipart` bool NOT NULL DEFAULT (false), `upload_id` text NOT NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Copy rows from old table "object_purges" to new temporary table "new_object_purges"
INSERT INTO `new_object_purges` (`id`, `bucket`, `object_key`, `multipart_upload_id`, `upload_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at`) SELECT `id`, `bucket`, `object_key`, `multipart_upload_id`, `upload_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at` FROM `object_purges`;
-- Drop "object_purges" table after copying rows
DROP TABLE `object_purges`;
-- Rename temporary table "new_object_purges" to "object_purges"
ALTER TABLE `new_object_purges` RENAME TO `object_purges`;
-- Create index "objectpurge_next_attempt_at" to table: "object_purges"
CREATE INDEX `objectpurge_next_attempt_at` ON `object_purges` (`next_attempt_at`);
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
-- Purges that used the "*" sentinel for "every multipart upload of the key" now say so in their own column
UPDATE `object_purges` SET `abort_all_multipart` = true, `multipart_upload_id` = '' WHERE `multipart_upload_id` = '*';
