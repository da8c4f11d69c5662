package database

import (
	"github.com/safedelete/uploads/ent"
)

// Dialect returns the SQL dialect (dialect.SQLite or dialect.Postgres) of
// client: code handed only the client may need to know which SQL to write
// (the queue's claims lock rows on PostgreSQL only).
func Dialect(client *ent.Client) string { return client.Driver().Dialect() }
