-- Create "idempotency_keys" table
CREATE TABLE `idempotency_keys` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `user_id` text NOT NULL, `key` text NOT NULL, `fingerprint` text NOT NULL, `holder` text NOT NULL DEFAULT (''), `locked_until` datetime NOT NULL, `effects` blob NULL, `scopes` text NOT NULL DEFAULT (''), `status` integer NOT NULL DEFAULT (0), `content_type` text NOT NULL DEFAULT (''), `body` blob NULL, `created_at` datetime NOT NULL);
-- Create index "idempotencykey_user_id_key" to table: "idempotency_keys"
CREATE UNIQUE INDEX `idempotencykey_user_id_key` ON `idempotency_keys` (`user_id`, `key`);
-- Create index "idempotencykey_created_at" to table: "idempotency_keys"
CREATE INDEX `idempotencykey_created_at` ON `idempotency_keys` (`created_at`);
