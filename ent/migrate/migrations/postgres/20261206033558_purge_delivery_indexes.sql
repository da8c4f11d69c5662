-- Create index "objectpurge_upload_id" to table: "object_purges"
CREATE INDEX "objectpurge_upload_id" ON "object_purges" ("upload_id");
-- Create index "webhookdelivery_endpoint_id_status_next_attempt_at" to table: "webhook_deliveries"
CREATE INDEX "webhookdelivery_endpoint_id_status_next_attempt_at" ON "webhook_deliveries" ("endpoint_id", "status", "next_attempt_at");
