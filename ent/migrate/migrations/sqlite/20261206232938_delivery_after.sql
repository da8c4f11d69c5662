-- Add column "after_id" to table: "webhook_deliveries"
ALTER TABLE `webhook_deliveries` ADD COLUMN `after_id` integer NULL;
-- Deliveries queued before the column existed wait for the latest earlier one of their upload to their endpoint still pending
UPDATE `webhook_deliveries` SET `after_id` = (SELECT MAX(`earlier`.`id`) FROM `webhook_deliveries` AS `earlier` WHERE `earlier`.`endpoint_id` = `webhook_deliveries`.`endpoint_id` AND `earlier`.`upload_id` = `webhook_deliveries`.`upload_id` AND `earlier`.`status` = 'PENDING' AND `earlier`.`id` < `webhook_deliveries`.`id`) WHERE `status` = 'PENDING';
