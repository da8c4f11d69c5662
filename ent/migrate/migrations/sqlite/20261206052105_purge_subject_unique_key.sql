-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Create "new_uploads" table
CREATE TABLE `new_uploads` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `filename` text NOT NULL, `content_type` text NOT NULL, `size` integer NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `bucket` text NOT NULL DEFAULT (''), `object_key` text NOT NULL DEFAULT (''), `multipart_upload_id` text NOT NULL DEFAULT (''), `owner_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `uploads_users_uploads` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Copy rows from old table "uploads" to new temporary table "new_uploads"
INSERT INTO `new_uploads` (`id`, `created_at`, `updated_at`, `filename`, `content_type`, `size`, `status`, `bucket`, `object_key`, `multipart_upload_id`, `owner_id`) SELECT `id`, `created_at`, `updated_at`, `filename`, `content_type`, `size`, `status`, `bucket`, `object_key`, `multipart_upload_id`, `owner_id` FROM `uploads`;
-- Drop "uploads" table after copying rows
DROP TABLE `uploads`;
-- Rename temporary table "new_uploads" to "uploads"
ALTER TABLE `new_uploads` RENAME TO `uploads`;
-- Create index "upload_owner_id_id" to table: "uploads"
CREATE INDEX `upload_owner_id_id` ON `uploads` (`owner_id`, `id`);
-- Create index "upload_bucket_object_key" to table: "uploads"
CREATE UNIQUE INDEX `upload_bucket_object_key` ON `uploads` (`bucket`, `object_key`) WHERE object_key <> '';
-- Create "new_object_purges" table
CREATE TABLE `new_object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `abort_all_multipart` bool NOT NULL DEFAULT (false), `upload_id` text NOT NULL, `owner_id` text NOT NULL DEFAULT (''), `filename` text NOT NULL DEFAULT (''), `size` integer NOT NULL DEFAULT (0), `upload_status` text NOT NULL DEFAULT (''), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Copy rows from old table "object_purges" to new temporary table "new_object_purges"
INSERT INTO `new_object_purges` (`id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at`) SELECT `id`, `bucket`, `object_key`, `multipart_upload_id`, `abort_all_multipart`, `upload_id`, `attempts`, `next_attempt_at`, `last_error`, `created_at` FROM `object_purges`;
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
