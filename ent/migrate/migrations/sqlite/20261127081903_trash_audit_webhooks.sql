-- Create "audit_events" table
CREATE TABLE `audit_events` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `upload_id` text NOT NULL, `owner_id` text NOT NULL, `kind` text NOT NULL, `actor` text NOT NULL, `via` text NOT NULL, `request_id` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL);
-- Create index "auditevent_owner_id_id" to table: "audit_events"
CREATE INDEX `auditevent_owner_id_id` ON `audit_events` (`owner_id`, `id`);
-- Create index "auditevent_owner_id_upload_id" to table: "audit_events"
CREATE INDEX `auditevent_owner_id_upload_id` ON `audit_events` (`owner_id`, `upload_id`);
-- Create index "auditevent_created_at" to table: "audit_events"
CREATE INDEX `auditevent_created_at` ON `audit_events` (`created_at`);
-- Create "deleted_uploads" table
CREATE TABLE `deleted_uploads` (`id` text NOT NULL, `owner_id` text NOT NULL, `filename` text NOT NULL, `content_type` text NOT NULL, `size` integer NOT NULL, `status` text NOT NULL, `bucket` text NOT NULL DEFAULT (''), `object_key` text NOT NULL DEFAULT (''), `multipart_upload_id` text NOT NULL DEFAULT (''), `created_at` datetime NOT NULL, `deleted_at` datetime NOT NULL, `purge_at` datetime NOT NULL, PRIMARY KEY (`id`));
-- Create index "deletedupload_owner_id_deleted_at" to table: "deleted_uploads"
CREATE INDEX `deletedupload_owner_id_deleted_at` ON `deleted_uploads` (`owner_id`, `deleted_at`);
-- Create index "deletedupload_purge_at" to table: "deleted_uploads"
CREATE INDEX `deletedupload_purge_at` ON `deleted_uploads` (`purge_at`);
-- Create "webhook_deliveries" table
CREATE TABLE `webhook_deliveries` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `message_id` text NOT NULL, `upload_id` text NOT NULL, `event_type` text NOT NULL, `payload` text NOT NULL, `status` text NOT NULL DEFAULT ('PENDING'), `attempts` integer NOT NULL DEFAULT (0), `next_attempt_at` datetime NOT NULL, `last_error` text NOT NULL DEFAULT (''), `last_status_code` integer NOT NULL DEFAULT (0), `created_at` datetime NOT NULL, `delivered_at` datetime NULL, `endpoint_id` text NOT NULL, CONSTRAINT `webhook_deliveries_webhook_endpoints_deliveries` FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints` (`id`) ON DELETE NO ACTION);
-- Create index "webhook_deliveries_message_id_key" to table: "webhook_deliveries"
CREATE UNIQUE INDEX `webhook_deliveries_message_id_key` ON `webhook_deliveries` (`message_id`);
-- Create index "webhookdelivery_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_status_next_attempt_at` ON `webhook_deliveries` (`status`, `next_attempt_at`);
-- Create index "webhookdelivery_endpoint_id_upload_id" to table: "webhook_deliveries"
CREATE INDEX `webhookdelivery_endpoint_id_upload_id` ON `webhook_deliveries` (`endpoint_id`, `upload_id`);
-- Create "webhook_endpoints" table
CREATE TABLE `webhook_endpoints` (`id` text NOT NULL, `owner_id` text NOT NULL, `url` text NOT NULL, `events` json NOT NULL, `secret` blob NOT NULL, `created_at` datetime NOT NULL, `disabled_at` datetime NULL, `disabled_reason` text NOT NULL DEFAULT (''), PRIMARY KEY (`id`));
-- Create index "webhookendpoint_owner_id" to table: "webhook_endpoints"
CREATE INDEX `webhookendpoint_owner_id` ON `webhook_endpoints` (`owner_id`);
