package database_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestPreparedReads: a prepared statement answers what the same read run
// plainly answers, from many goroutines at once (so on several
// connections), sees rows changed since it was prepared, and a statement
// that fails to prepare fails every time instead of being kept. On SQLite,
// and on PostgreSQL when TEST_DATABASE_URL names one.
func TestPreparedReads(t *testing.T) {
	t.Parallel()
	urls := map[string]string{"sqlite": database.SQLiteURL(filepath.Join(t.TempDir(), "p.db"))}
	if pg := testenv.PostgresSchema(t); pg != "" {
		urls["postgres"] = pg
	}
	for engine, url := range urls {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			client, err := database.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			users := make([]*ent.User, 8)
			for i := range users {
				if users[i], err = client.User.Create().SetEmail(string(rune('a'+i)) + "@example.com").Save(ctx); err != nil {
					t.Fatal(err)
				}
			}
			const query = `SELECT "email" FROM "users" WHERE "id" = $1`
			stmt := database.Prepare(client, query)
			plain := func(ctx context.Context, args ...any) (*sql.Rows, error) {
				return client.QueryContext(ctx, query, args...)
			}
			email := func(run func(context.Context, ...any) (*sql.Rows, error), id string) string {
				t.Helper()
				rows, err := run(ctx, id)
				if err != nil {
					t.Error(err)
					return ""
				}
				defer rows.Close()
				var email string
				if rows.Next() {
					if err := rows.Scan(&email); err != nil {
						t.Error(err)
					}
				}
				if err := rows.Err(); err != nil {
					t.Error(err)
				}
				return email
			}

			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := range 50 {
						u := users[i%len(users)]
						if got := email(stmt.QueryContext, u.ID); got != *u.Email || got != email(plain, u.ID) {
							t.Errorf("prepared read of %s = %q, want %q", u.ID, got, *u.Email)
						}
					}
				})
			}
			wg.Wait()
			if got := email(stmt.QueryContext, "no such user"); got != "" {
				t.Errorf("prepared read of no user = %q", got)
			}

			client.User.UpdateOne(users[0]).SetEmail("changed@example.com").ExecX(ctx)
			if got := email(stmt.QueryContext, users[0].ID); got != "changed@example.com" {
				t.Errorf("prepared read after an update = %q, want changed@example.com", got)
			}

			noTable := database.Prepare(client, `SELECT 1 FROM "no_such_table"`)
			for range 2 {
				if rows, err := noTable.QueryContext(ctx); err == nil {
					rows.Close()
					t.Error("a statement of no table ran")
				}
			}
		})
	}
}
