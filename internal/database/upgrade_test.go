package database_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
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
	t.Parallel()
	type engine struct{ driver, dir, url string }
	engines := []engine{{"sqlite3", "sqlite", "file:" + filepath.Join(t.TempDir(), "old.db")}}
	if pg := testenv.PostgresSchema(t); pg != "" {
		engines = append(engines, engine{"pgx", "postgres", pg})
	}
	for _, e := range engines {
		t.Run(e.dir, func(t *testing.T) {
			t.Parallel()
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

// TestUpgradeKeepsUsersKeysAndUploads: identities_scopes rebuilds SQLite's
// users table (its email becomes optional) under enforced foreign keys, as
// the service opens the database. Users with keys and uploads come through
// it unchanged, and their keys keep every scope and never expire.
func TestUpgradeKeepsUsersKeysAndUploads(t *testing.T) {
	t.Parallel()
	for _, e := range upgradeEngines(t) {
		t.Run(e.dir, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migratedUntil(t, e, "identities_scopes")
			now := time.Now().UTC()
			for _, q := range []string{
				`INSERT INTO users (id, email, created_at, updated_at) VALUES ('usr_a', 'a@example.com', $1, $1)`,
				`INSERT INTO api_keys (id, owner_id, prefix, digest, created_at) VALUES ('key_a', 'usr_a', 'ukey_0000', 'd1', $1)`,
				`INSERT INTO uploads (id, owner_id, filename, content_type, size, bucket, object_key, status, created_at, updated_at) VALUES ('upl_a', 'usr_a', 'f', 'text/plain', 1, 'b', 'k', 'READY', $1, $1)`,
			} {
				if _, err := db.ExecContext(ctx, q, now); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			applied, err := database.Migrate(ctx, db, map[string]string{"sqlite3": "sqlite3", "pgx": "postgres"}[e.driver])
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 {
				t.Fatal("no migration applied")
			}
			var email, owner string
			var scopes sql.NullString
			var expires sql.NullTime
			err = db.QueryRowContext(ctx, `SELECT u.email, k.scopes, k.expires_at, p.owner_id FROM users u
				JOIN api_keys k ON k.owner_id = u.id JOIN uploads p ON p.owner_id = u.id WHERE u.id = 'usr_a'`).Scan(&email, &scopes, &expires, &owner)
			if err != nil {
				t.Fatal(err)
			}
			if email != "a@example.com" || scopes.Valid || expires.Valid || owner != "usr_a" {
				t.Errorf("after the upgrade: email %q, scopes %v, expires %v, upload owner %q", email, scopes, expires, owner)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at) VALUES ('usr_b', $1, $1)`, now); err != nil {
				t.Errorf("a user without an email: %v", err)
			}
		})
	}
}

// TestUpgradeKeepsDeliveryOrder: deliveries queued before after_id existed
// are sent in their order after the upgrade: each pending one waits for the
// latest earlier one of its upload to its endpoint still pending.
func TestUpgradeKeepsDeliveryOrder(t *testing.T) {
	t.Parallel()
	for _, e := range upgradeEngines(t) {
		t.Run(e.dir, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migratedUntil(t, e, "delivery_after")
			now := time.Now().UTC()
			if _, err := db.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, owner_id, url, events, secret, created_at) VALUES ('whe_a', 'usr_a', 'https://h.example.com', '[]', $1, $2)`, []byte("s"), now); err != nil {
				t.Fatal(err)
			}
			// In id order: upl_x delivered, upl_x pending, upl_y pending,
			// upl_x pending, upl_x failed, upl_x pending.
			for i, d := range []struct{ upload, status string }{
				{"upl_x", "DELIVERED"}, {"upl_x", "PENDING"}, {"upl_y", "PENDING"}, {"upl_x", "PENDING"}, {"upl_x", "FAILED"}, {"upl_x", "PENDING"},
			} {
				_, err := db.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, message_id, upload_id, event_type, payload, status, next_attempt_at, created_at, endpoint_id)
					VALUES ($1, $2, $3, 'upload.deleted', '{}', $4, $5, $5, 'whe_a')`, i+1, fmt.Sprintf("msg_%d", i+1), d.upload, d.status, now)
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := database.Migrate(ctx, db, map[string]string{"sqlite3": "sqlite3", "pgx": "postgres"}[e.driver]); err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, `SELECT id, after_id FROM webhook_deliveries ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var id int
				var after sql.NullInt64
				if err := rows.Scan(&id, &after); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d:%v", id, map[bool]any{true: after.Int64, false: "-"}[after.Valid]))
			}
			// The pending ones of upl_x wait each for the one before still
			// pending; the first of each upload, and ended ones, for none.
			if want := "1:- 2:- 3:- 4:2 5:- 6:4"; strings.Join(got, " ") != want {
				t.Fatalf("after the upgrade, id:after_id = %s, want %s", strings.Join(got, " "), want)
			}
		})
	}
}

// upgradeEngine is a database to upgrade: a SQLite file, and PostgreSQL's
// schema when TEST_DATABASE_URL is set.
type upgradeEngine struct{ driver, dir, url string }

func upgradeEngines(t *testing.T) []upgradeEngine {
	engines := []upgradeEngine{{"sqlite3", "sqlite", "file:" + filepath.Join(t.TempDir(), "old.db") + "?_fk=1"}}
	if pg := testenv.PostgresSchema(t); pg != "" {
		engines = append(engines, upgradeEngine{"pgx", "postgres", pg})
	}
	return engines
}

// migratedUntil opens e's database on one connection (the search_path and
// the SQLite file are its own) with the migrations before the one named
// until applied, as a release before it left the database.
func migratedUntil(t *testing.T, e upgradeEngine, until string) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open(e.driver, e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	dir, err := atlas.NewLocalDir(filepath.Join("..", "..", "ent", "migrate", "migrations", e.dir))
	if err != nil {
		t.Fatal(err)
	}
	files, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_migrations (version VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at TIMESTAMP NOT NULL)`}
	found := false
	for _, f := range files {
		if found = f.Desc() == until; found {
			break
		}
		s, err := f.Stmts()
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, s...)
		stmts = append(stmts, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ('`+f.Version()+`', '`+f.Desc()+`', CURRENT_TIMESTAMP)`)
	}
	if !found {
		t.Fatalf("no migration named %s", until)
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return db
}
