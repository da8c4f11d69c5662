-- Drop index "upload_owner_id" from table: "uploads"
DROP INDEX "upload_owner_id";
-- Create index "upload_owner_id_id" to table: "uploads"
CREATE INDEX "upload_owner_id_id" ON "uploads" ("owner_id", "id");
