package database_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestMigrationsMatchSchema: after the versioned migrations, Ent's own
// auto-migration finds nothing to change, so the files describe exactly the
// Ent schema. It runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL
// names one (as in .ci/run).
func TestMigrationsMatchSchema(t *testing.T) {
	t.Parallel()
	urls := map[string]string{"sqlite": database.SQLiteURL(filepath.Join(t.TempDir(), "m.db"))}
	if pg := testenv.PostgresSchema(t); pg != "" {
		urls["postgres"] = pg
	}
	for engine, url := range urls {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			client, err := database.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			var plan bytes.Buffer
			if err := client.Schema.WriteTo(context.Background(), &plan, schema.WithDiffHook(samePredicates)); err != nil {
				t.Fatal(err)
			}
			var changes []string
			for _, line := range strings.Split(plan.String(), "\n") {
				if line = strings.TrimSpace(line); line != "" && line != "BEGIN;" && line != "COMMIT;" {
					changes = append(changes, line)
				}
			}
			if len(changes) > 0 {
				t.Errorf("the migrations differ from ent/schema; run go run ./ent/migrate/main.go <name>. Missing:\n%s",
					strings.Join(changes, "\n"))
			}
		})
	}
}

// samePredicates makes Ent's diff take a partial index's predicate as
// PostgreSQL prints it back (object_key <> ” reads
// ((object_key)::text <> ”::text)) for the same predicate, which Ent
// would otherwise plan to drop and create again on every run.
func samePredicates(next schema.Differ) schema.Differ {
	return schema.DiffFunc(func(current, desired *atlas.Schema) ([]atlas.Change, error) {
		normal := strings.NewReplacer("::text", "", "(", "", ")", "", " ", "")
		for _, want := range desired.Tables {
			have, ok := current.Table(want.Name)
			if !ok {
				continue
			}
			for _, idx := range want.Indexes {
				got, ok := have.Index(idx.Name)
				if !ok {
					continue
				}
				for _, a := range idx.Attrs {
					p, ok := a.(*postgres.IndexPredicate)
					if !ok {
						continue
					}
					for _, b := range got.Attrs {
						if q, ok := b.(*postgres.IndexPredicate); ok && normal.Replace(q.P) == normal.Replace(p.P) {
							p.P = q.P
						}
					}
				}
			}
		}
		return next.Diff(current, desired)
	})
}

// TestMigrateConcurrentStarts: instances starting together apply each
// migration once, and a restart applies nothing.
func TestMigrateConcurrentStarts(t *testing.T) {
	t.Parallel()
	url := database.SQLiteURL(filepath.Join(t.TempDir(), "m.db"))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			client, err := database.Open(context.Background(), url)
			if err == nil {
				client.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite3", "file:"+strings.TrimPrefix(url, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries, _ := os.ReadDir(filepath.Join("..", "..", "ent", "migrate", "migrations", "sqlite"))
	var want int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			want++
		}
	}
	var got int
	if err := db.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&got); err != nil || got != want || want == 0 {
		t.Errorf("schema_migrations has %d rows (%v), want %d", got, err, want)
	}
	applied, err := database.Migrate(context.Background(), db, "sqlite3")
	if err != nil || len(applied) != 0 {
		t.Errorf("a second run applied %v (%v)", applied, err)
	}
}

// TestSQLiteDurableCommits: every connection the service opens commits with
// synchronous=FULL, so an acknowledged delete survives a power cut (with
// WAL, go-sqlite3 would otherwise choose NORMAL).
func TestSQLiteDurableCommits(t *testing.T) {
	t.Parallel()
	client, err := database.Open(context.Background(), database.SQLiteURL(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rows, err := client.QueryContext(context.Background(), "PRAGMA synchronous")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var level int
	if !rows.Next() || rows.Scan(&level) != nil || level != 2 {
		t.Errorf("PRAGMA synchronous = %d, want 2 (FULL)", level)
	}
}
