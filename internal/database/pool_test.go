package database_test

import (
	"context"
	stdsql "database/sql"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestPostgresConnectionBound: a burst of callers on one instance waits
// for DATABASE_URL's pool_max_conns connections (DefaultPostgresConns
// without it) instead of opening one each, which took a busy server past
// PostgreSQL's max_connections and failed requests with "too many clients".
func TestPostgresConnectionBound(t *testing.T) {
	t.Parallel()
	base := testenv.PostgresSchema(t)
	if base == "" {
		t.Skip("needs TEST_DATABASE_URL")
	}
	app := "bound_" + strings.ToLower(ids.NewUser())
	ctx := context.Background()
	client, err := database.Open(ctx, base+"&pool_max_conns=3&application_name="+app)
	if err != nil {
		t.Fatal(err) // also if pool_max_conns went on to the server as a setting
	}
	t.Cleanup(func() { client.Close() })

	const callers = 24
	seen := make([]int, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			tx, err := client.Tx(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			defer tx.Rollback()
			// Held long enough for the others to want a connection too.
			rows, err := tx.QueryContext(ctx, `SELECT pg_sleep(0.05), count(*) FROM pg_stat_activity WHERE application_name = $1`, app)
			if err != nil {
				errs[i] = err
				return
			}
			defer rows.Close()
			var sleep string
			for rows.Next() {
				errs[i] = rows.Scan(&sleep, &seen[i])
			}
		})
	}
	close(start)
	wg.Wait()
	most := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		most = max(most, seen[i])
	}
	if most < 1 || most > 3 {
		t.Fatalf("%d callers at once saw up to %d of this instance's connections open; want 1 to 3 (pool_max_conns=3)", callers, most)
	}
}

// TestBackgroundHasItsOwnConnections: with every connection requests may
// use taken (a burst of deletes), background work still gets one at once
// through Background, within the instance's pool_max_conns: a worker that
// queued for a connection behind the requests fell further behind the
// longer the burst lasted (issue 26). On SQLite, Background is the client.
func TestBackgroundHasItsOwnConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lite, err := database.Open(ctx, database.SQLiteURL(filepath.Join(t.TempDir(), "lite.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	if database.Background(lite) != lite {
		t.Error("on SQLite, Background is not the client")
	}
	base := testenv.PostgresSchema(t)
	if base == "" {
		t.Skip("needs TEST_DATABASE_URL")
	}
	app := "background_" + strings.ToLower(ids.NewUser())
	client, err := database.Open(ctx, base+"&pool_max_conns=5&application_name="+app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	requests := client.Driver().(interface{ DB() *stdsql.DB }).DB()
	var held []*ent.Tx
	for range requests.Stats().MaxOpenConnections {
		tx, err := client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, tx)
	}
	t.Cleanup(func() {
		for _, tx := range held {
			tx.Rollback()
		}
	})
	// Fails at once if background work queues behind the requests.
	bgCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	queued := make(chan struct{})
	go func() {
		defer close(queued)
		for bgCtx.Err() == nil {
			if requests.Stats().WaitCount > 0 {
				cancel()
				return
			}
			runtime.Gosched()
		}
	}()
	var open int
	err = database.WithTx(bgCtx, database.Background(client), func(tx *ent.Tx) error {
		rows, err := tx.QueryContext(bgCtx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			err = rows.Scan(&open)
		}
		return err
	})
	cancel()
	<-queued
	if err != nil {
		t.Fatalf("background work with the %d request connections taken: %v", len(held), err)
	}
	if open > 5 {
		t.Fatalf("%d connections open, more than pool_max_conns=5", open)
	}
}

// TestPostgresPoolParameter: pool_max_conns is read and taken out of the
// URL; a bad one is refused without repeating the URL's password.
func TestPostgresPoolParameter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url, want string
		conns     int
	}{
		{"postgres://u:pw@h/db?sslmode=disable", "postgres://u:pw@h/db?sslmode=disable", database.DefaultPostgresConns},
		{"postgres://u:pw@h/db?pool_max_conns=7&sslmode=disable", "postgres://u:pw@h/db?sslmode=disable", 7},
	} {
		got, conns, err := database.PostgresPool(c.url)
		if err != nil || got != c.want || conns != c.conns {
			t.Errorf("%s: %q, %d, %v; want %q, %d", c.url, got, conns, err, c.want, c.conns)
		}
	}
	for _, bad := range []string{"postgres://u:secretpw@h/db?pool_max_conns=0", "postgres://u:secretpw@h/db?pool_max_conns=many", "postgres://u:secretpw@h/db?pool_max_conns=-2"} {
		_, err := database.Open(context.Background(), bad)
		if err == nil || !strings.Contains(err.Error(), "pool_max_conns") || strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: %v; want an error naming pool_max_conns, without the password", bad, err)
		}
	}
}
