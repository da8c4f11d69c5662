-- Add column "seq" to table: "audit_events"
ALTER TABLE `audit_events` ADD COLUMN `seq` integer NULL;
-- Add column "prev_hash" to table: "audit_events"
ALTER TABLE `audit_events` ADD COLUMN `prev_hash` blob NULL;
-- Add column "hash" to table: "audit_events"
ALTER TABLE `audit_events` ADD COLUMN `hash` blob NULL;
-- Create "audit_chains" table
CREATE TABLE `audit_chains` (`owner_id` text NOT NULL, `seq` integer NOT NULL DEFAULT (0), `hash` blob NULL, `pruned_seq` integer NOT NULL DEFAULT (0), PRIMARY KEY (`owner_id`));
