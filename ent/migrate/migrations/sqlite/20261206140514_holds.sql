-- Add column "held_until" to table: "deleted_uploads"
ALTER TABLE `deleted_uploads` ADD COLUMN `held_until` datetime NULL;
-- Add column "held_until" to table: "users"
ALTER TABLE `users` ADD COLUMN `held_until` datetime NULL;
-- Add column "held_until" to table: "uploads"
ALTER TABLE `uploads` ADD COLUMN `held_until` datetime NULL;
-- Create "holds" table
CREATE TABLE `holds` (`id` text NOT NULL, `user_id` text NOT NULL, `upload_id` text NULL, `reason` text NOT NULL, `placed_by` text NOT NULL, `created_at` datetime NOT NULL, `until` datetime NULL, `released_at` datetime NULL, `released_by` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- Create index "hold_user_id_created_at" to table: "holds"
CREATE INDEX `hold_user_id_created_at` ON `holds` (`user_id`, `created_at`);
-- Create index "hold_upload_id" to table: "holds"
CREATE INDEX `hold_upload_id` ON `holds` (`upload_id`);
