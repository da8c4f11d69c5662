-- Create "legal_hold_syncs" table
CREATE TABLE `legal_hold_syncs` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `upload_id` text NOT NULL, `owner_id` text NOT NULL, `bucket` text NOT NULL, `object_key` text NOT NULL, `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Create index "legalholdsync_next_attempt_at" to table: "legal_hold_syncs"
CREATE INDEX `legalholdsync_next_attempt_at` ON `legal_hold_syncs` (`next_attempt_at`);
