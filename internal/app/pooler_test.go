package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// pooledDatabase makes a database of its own for t on the PostgreSQL
// server of TEST_DATABASE_URL, and returns its URL through the PgBouncer
// of TEST_PGBOUNCER_URL (transaction mode, every database passed through)
// and its URL reaching PostgreSQL directly.
func pooledDatabase(t *testing.T) (pooled, direct string) {
	t.Helper()
	pooler := os.Getenv("TEST_PGBOUNCER_URL")
	if pooler == "" {
		t.Skip("TEST_PGBOUNCER_URL names no PgBouncer in transaction mode (.ci/run starts one)")
	}
	server := os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		t.Fatal("TEST_PGBOUNCER_URL needs TEST_DATABASE_URL: the PostgreSQL server behind the pooler")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "pooled_" + hex.EncodeToString(b)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, server); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return withDatabase(t, pooler, name), withDatabase(t, server, name)
}

func withDatabase(t *testing.T, rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestTransactionPoolerNeedsASessionURL: through a pooler in transaction
// mode, where LISTEN and a session lock quietly stop holding, the service
// refuses to start without DATABASE_SESSION_URL, saying what to set; and
// refuses a session URL that goes through the pooler too.
func TestTransactionPoolerNeedsASessionURL(t *testing.T) {
	t.Parallel()
	pooled, _ := pooledDatabase(t)
	for _, session := range []string{"", pooled} {
		cfg := config.Defaults()
		cfg.DataDir, cfg.DatabaseURL, cfg.DatabaseSessionURL = t.TempDir(), pooled, session
		a, err := app.New(context.Background(), &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			a.Close(context.Background())
			t.Fatalf("DATABASE_SESSION_URL=%q through the pooler: the service started", session)
		}
		if !strings.Contains(err.Error(), "DATABASE_SESSION_URL") || !strings.Contains(err.Error(), "transaction mode") {
			t.Errorf("DATABASE_SESSION_URL=%q: the error does not say what to set: %v", session, err)
		}
	}
}

// TestThroughTransactionPooler: with DATABASE_URL through PgBouncer in
// transaction mode and DATABASE_SESSION_URL direct, the service works:
// concurrent REST deletes answer 200 and their objects are purged; no
// statement fails on a prepared statement the pooler's other server
// connection never saw; and of two instances exactly one leads.
func TestThroughTransactionPooler(t *testing.T) {
	t.Parallel()
	pooled, direct := pooledDatabase(t)
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.DatabaseURL, c.DatabaseSessionURL = pooled, direct
	}})
	if !database.TransactionPooled(env.Client()) {
		t.Fatal("the pooler in transaction mode went unnoticed")
	}
	_, key := env.NewUser()
	uploads := make([]*ent.Upload, 16)
	for i := range uploads {
		uploads[i] = env.MustUpload(key, "f.txt", []byte("pooled"))
	}
	var wg sync.WaitGroup
	for _, u := range uploads {
		wg.Go(func() {
			if res := env.DeleteREST(key, u.ID); res.Status != http.StatusOK {
				t.Errorf("delete %s: %d %s", u.ID, res.Status, res.Body)
			}
		})
	}
	wg.Wait()
	env.Eventually(10*time.Second, "every purge done", func() bool { return env.PendingPurges() == 0 })
	for _, u := range uploads {
		if env.ObjectExists(u.ObjectKey) {
			t.Errorf("object of %s left in the bucket", u.ID)
		}
	}

	other := env.NewInstance()
	ctx := context.Background()
	if a, b := env.App.Queue.Leads(ctx), other.App.Queue.Leads(ctx); a == b {
		t.Errorf("two instances through the pooler: leads %v and %v, want exactly one", a, b)
	}
	if logs := env.Logs.String(); strings.Contains(logs, "prepared statement") {
		t.Errorf("the service's statements met the pooler's prepared-statement errors:\n%s", logs)
	}
}
