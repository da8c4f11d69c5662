package database

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sync/atomic"
	"time"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent/migrate/migrations"
)

// migrationsLockID names the PostgreSQL advisory lock that serializes
// instances migrating at the same time.
const migrationsLockID = 0x75706c6f6164 // "upload"

var memDirs atomic.Int64

// Migrate applies the versioned migrations of the engine (ent/migrate/
// migrations) that the database has not had yet, in order, in one
// transaction, and returns the versions it applied.
//
// The service runs it at start-up, so that every instance runs on a schema
// it knows and no deployment step can be forgotten. Concurrent starts are
// safe: PostgreSQL takes an advisory lock for the transaction, SQLite's
// write transactions (BEGIN IMMEDIATE) exclude each other. A migration
// that fails leaves the database as it was.
func Migrate(ctx context.Context, db *sql.DB, engine string) ([]string, error) {
	dir, err := embeddedDir(engine)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}

	// One connection: SQLite's foreign_keys pragma belongs to it.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if engine == dialect.SQLite {
		// Atlas rebuilds a SQLite table to change a column (copy, drop,
		// rename), which SQLite allows only with foreign keys off, and the
		// pragma is ignored inside a transaction: it is set around it, and
		// the references are checked before COMMIT instead (SQLite's own
		// procedure, "Making Other Kinds Of Table Schema Changes").
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON") //nolint:errcheck // the connection's DSN asked for it; a failure here leaves it as the DSN left it only until it closes
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if engine == dialect.Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationsLockID); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	// Asked first rather than CREATE TABLE IF NOT EXISTS, so that an up to
	// date database is only read: a read-only replica or a database put in
	// read-only mode still starts (and answers its contract's 500s).
	exists := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if engine == dialect.Postgres {
		exists = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
	}
	var found int
	if err := tx.QueryRowContext(ctx, exists).Scan(&found); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if found == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_migrations (
			version VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at TIMESTAMP NOT NULL)`); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	done := map[string]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[v] = true
	}
	rows.Close()

	var applied []string
	insert := "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
	if engine == dialect.Postgres {
		insert = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)"
	}
	for _, f := range files {
		if done[f.Version()] {
			continue
		}
		stmts, err := f.Stmts()
		if err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", f.Name(), err)
		}
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return nil, fmt.Errorf("migrate: %s: %w", f.Name(), err)
			}
		}
		if _, err := tx.ExecContext(ctx, insert, f.Version(), f.Desc(), time.Now().UTC()); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", f.Name(), err)
		}
		applied = append(applied, f.Version())
	}
	if engine == dialect.SQLite && len(applied) > 0 {
		if err := foreignKeyCheck(ctx, tx); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return applied, nil
}

// embeddedDir loads the engine's migrations and checks them against their
// atlas.sum, so that an edited or half-copied migration is refused.
func embeddedDir(engine string) (*atlas.MemDir, error) {
	sub := map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"}[engine]
	if sub == "" {
		return nil, fmt.Errorf("migrate: no migrations for %q", engine)
	}
	dir := atlas.OpenMemDir(fmt.Sprintf("uploads-%s-%d", sub, memDirs.Add(1)))
	entries, err := fs.ReadDir(migrations.FS, sub)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(migrations.FS, path.Join(sub, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(e.Name(), data); err != nil {
			return nil, err
		}
	}
	if err := atlas.Validate(dir); err != nil {
		return nil, fmt.Errorf("migrate: %s migrations do not match their atlas.sum: %w", sub, err)
	}
	return dir, nil
}

// foreignKeyCheck fails when a row of the migrated SQLite database refers
// to a row that is not there.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("migrate: foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("migrate: foreign key check: %w", err)
		}
		return fmt.Errorf("migrate: a row of %s refers to a missing row of %s", table, parent)
	}
	return rows.Err()
}
