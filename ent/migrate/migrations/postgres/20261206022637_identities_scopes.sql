-- Modify "api_keys" table
ALTER TABLE "api_keys" ADD COLUMN "scopes" jsonb NULL, ADD COLUMN "expires_at" timestamptz NULL;
-- Modify "users" table
ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL;
-- Create "retired_identities" table
CREATE TABLE "retired_identities" ("id" character varying NOT NULL, "retired_at" timestamptz NOT NULL, PRIMARY KEY ("id"));
-- Create "identities" table
CREATE TABLE "identities" ("id" character varying NOT NULL, "issuer" character varying NOT NULL, "subject" character varying NOT NULL, "created_at" timestamptz NOT NULL, "user_id" character varying NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "identities_users_identities" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION);
-- Create index "identity_issuer_subject" to table: "identities"
CREATE UNIQUE INDEX "identity_issuer_subject" ON "identities" ("issuer", "subject");
-- Create index "identity_user_id" to table: "identities"
CREATE INDEX "identity_user_id" ON "identities" ("user_id");
