-- Create "api_keys" table
CREATE TABLE `api_keys` (`id` text NOT NULL, `prefix` text NOT NULL, `digest` text NOT NULL, `created_at` datetime NOT NULL, `last_used_at` datetime NULL, `revoked_at` datetime NULL, `owner_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `api_keys_users_api_keys` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Create index "api_keys_digest_key" to table: "api_keys"
CREATE UNIQUE INDEX `api_keys_digest_key` ON `api_keys` (`digest`);
-- Create index "apikey_owner_id" to table: "api_keys"
CREATE INDEX `apikey_owner_id` ON `api_keys` (`owner_id`);
-- Create "object_purges" table
CREATE TABLE `object_purges` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `bucket` text NOT NULL, `object_key` text NOT NULL, `multipart_upload_id` text NOT NULL DEFAULT (''), `upload_id` text NOT NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Create index "objectpurge_next_attempt_at" to table: "object_purges"
CREATE INDEX `objectpurge_next_attempt_at` ON `object_purges` (`next_attempt_at`);
-- Create "uploads" table
CREATE TABLE `uploads` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `filename` text NOT NULL, `content_type` text NOT NULL, `size` integer NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `bucket` text NOT NULL DEFAULT (''), `object_key` text NOT NULL DEFAULT (''), `multipart_upload_id` text NOT NULL DEFAULT (''), `owner_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `uploads_users_uploads` FOREIGN KEY (`owner_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Create index "upload_owner_id" to table: "uploads"
CREATE INDEX `upload_owner_id` ON `uploads` (`owner_id`);
-- Create index "upload_bucket_object_key" to table: "uploads"
CREATE INDEX `upload_bucket_object_key` ON `uploads` (`bucket`, `object_key`);
-- Create "users" table
CREATE TABLE `users` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `email` text NOT NULL, PRIMARY KEY (`id`));
-- Create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
