-- Disable the enforcement of foreign-keys constraints
PRAGMA foreign_keys = off;
-- Add column "scopes" to table: "api_keys"
ALTER TABLE `api_keys` ADD COLUMN `scopes` json NULL;
-- Add column "expires_at" to table: "api_keys"
ALTER TABLE `api_keys` ADD COLUMN `expires_at` datetime NULL;
-- Create "new_users" table
CREATE TABLE `new_users` (`id` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `email` text NULL, PRIMARY KEY (`id`));
-- Copy rows from old table "users" to new temporary table "new_users"
INSERT INTO `new_users` (`id`, `created_at`, `updated_at`, `email`) SELECT `id`, `created_at`, `updated_at`, `email` FROM `users`;
-- Drop "users" table after copying rows
DROP TABLE `users`;
-- Rename temporary table "new_users" to "users"
ALTER TABLE `new_users` RENAME TO `users`;
-- Create index "users_email_key" to table: "users"
CREATE UNIQUE INDEX `users_email_key` ON `users` (`email`);
-- Create "identities" table
CREATE TABLE `identities` (`id` text NOT NULL, `issuer` text NOT NULL, `subject` text NOT NULL, `created_at` datetime NOT NULL, `user_id` text NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `identities_users_identities` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE NO ACTION);
-- Create index "identity_issuer_subject" to table: "identities"
CREATE UNIQUE INDEX `identity_issuer_subject` ON `identities` (`issuer`, `subject`);
-- Create index "identity_user_id" to table: "identities"
CREATE INDEX `identity_user_id` ON `identities` (`user_id`);
-- Create "retired_identities" table
CREATE TABLE `retired_identities` (`id` text NOT NULL, `retired_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Enable back the enforcement of foreign-keys constraints
PRAGMA foreign_keys = on;
