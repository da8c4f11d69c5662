package database_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	atlas "ariga.io/atlas/sql/migrate"

	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestUpgradeKeepsAbortAllPurges: a purge queued before abort_all_multipart
// existed said "every multipart upload of the key" with the id "*"; after
// the upgrade it says so in the column, and no purge tries to abort an
// upload whose id is "*".
func TestUpgradeKeepsAbortAllPurges(t *testing.T) {
	type engine struct{ driver, dir, url string }
	engines := []engine{{"sqlite3", "sqlite", "file:" + filepath.Join(t.TempDir(), "old.db")}}
	if pg := testenv.PostgresSchema(t); pg != "" {
		engines = append(engines, engine{"pgx", "postgres", pg})
	}
	for _, e := range engines {
		t.Run(e.dir, func(t *testing.T) {
			ctx := context.Background()
			db, err := sql.Open(e.driver, e.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1) // one connection: the search_path and the SQLite file are its own
			dir, err := atlas.NewLocalDir(filepath.Join("..", "..", "ent", "migrate", "migrations", e.dir))
			if err != nil {
				t.Fatal(err)
			}
			files, err := dir.Files()
			if err != nil || len(files) < 2 {
				t.Fatalf("migrations: %d files, %v", len(files), err)
			}
			// The database as the first release left it, with one queued purge of each kind.
			stmts, err := files[0].Stmts()
			if err != nil {
				t.Fatal(err)
			}
			stmts = append(stmts,
				`CREATE TABLE schema_migrations (version VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at TIMESTAMP NOT NULL)`,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES ('`+files[0].Version()+`', 'init', CURRENT_TIMESTAMP)`)
			for _, stmt := range stmts {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			insert := `INSERT INTO object_purges (bucket, object_key, multipart_upload_id, upload_id, attempts, next_attempt_at, last_error, created_at)
				VALUES ($1, $2, $3, 'upl_x', 1, $4, '', $4)`
			for key, multipartID := range map[string]string{"pending": "*", "failed": "mp-1"} {
				if _, err := db.ExecContext(ctx, insert, "b", key, multipartID, time.Now().UTC()); err != nil {
					t.Fatalf("queue purge: %v", err)
				}
			}

			if _, err := database.Migrate(ctx, db, map[string]string{"sqlite3": "sqlite3", "pgx": "postgres"}[e.driver]); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			rows, err := db.QueryContext(ctx, `SELECT object_key, multipart_upload_id, abort_all_multipart FROM object_purges`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var key, multipartID string
				var all bool
				if err := rows.Scan(&key, &multipartID, &all); err != nil {
					t.Fatal(err)
				}
				got[key] = multipartID + map[bool]string{true: " all", false: ""}[all]
			}
			if got["pending"] != " all" || got["failed"] != "mp-1" {
				t.Errorf("after the upgrade: %q, want pending: abort all with no id, failed: its own id only", got)
			}
		})
	}
}
