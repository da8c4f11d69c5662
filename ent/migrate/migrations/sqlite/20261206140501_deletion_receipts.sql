-- Create "deletion_receipts" table
CREATE TABLE `deletion_receipts` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `upload_id` text NOT NULL, `owner_id` text NOT NULL, `jws` text NOT NULL, `created_at` datetime NOT NULL);
-- Create index "deletion_receipts_upload_id_key" to table: "deletion_receipts"
CREATE UNIQUE INDEX `deletion_receipts_upload_id_key` ON `deletion_receipts` (`upload_id`);
-- Create index "deletionreceipt_created_at" to table: "deletion_receipts"
CREATE INDEX `deletionreceipt_created_at` ON `deletion_receipts` (`created_at`);
