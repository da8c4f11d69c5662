// Package migrations embeds the versioned migrations (Atlas format) of each
// database engine, written by ent/migrate/main.go. Never edit a migration
// that has been released: add a new one.
package migrations

import "embed"

// FS holds sqlite/ and postgres/, each with its .sql files and atlas.sum.
//
//go:embed sqlite postgres
var FS embed.FS
