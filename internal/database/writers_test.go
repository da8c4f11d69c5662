package database_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
)

// TestSQLiteWritersTakeTurns: on SQLite, concurrent transactions wait for
// one another in the service rather than in SQLite's busy handler. With
// SQLite told not to wait at all (_busy_timeout=0), 32 concurrent
// transactions that each read and rewrite a row all commit, none fails
// "database is locked", and no update is lost; a transaction rolled back,
// or one whose function panics, gives its turn back; a caller that gives
// up while waiting for its turn gets its context's error.
func TestSQLiteWritersTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, err := database.Open(ctx, database.SQLiteURL(filepath.Join(t.TempDir(), "w.db")+"?_busy_timeout=0"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	u, err := client.User.Create().SetEmail("0@example.com").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const writers = 32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			errs <- database.WithTx(ctx, client, func(tx *ent.Tx) error {
				cur, err := tx.User.Get(ctx, u.ID)
				if err != nil {
					return err
				}
				var n int
				fmt.Sscanf(*cur.Email, "%d@", &n)
				return tx.User.UpdateOneID(u.ID).SetEmail(fmt.Sprintf("%d@example.com", n+1)).Exec(ctx)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a concurrent transaction failed: %v", err)
		}
	}
	if got, err := client.User.Get(ctx, u.ID); err != nil || *got.Email != fmt.Sprintf("%d@example.com", writers) {
		t.Fatalf("after %d increments: %v, %v", writers, got, err)
	}

	// A rollback and a panic give the turn back: the next write goes through.
	errFn := errors.New("changed my mind")
	if err := database.WithTx(ctx, client, func(*ent.Tx) error { return errFn }); !errors.Is(err, errFn) {
		t.Fatalf("rolled back: %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = database.WithTx(ctx, client, func(*ent.Tx) error { panic("boom") })
	}()
	if err := client.User.UpdateOneID(u.ID).SetEmail("after@example.com").Exec(ctx); err != nil {
		t.Fatalf("a write after a rollback and a panic: %v", err)
	}

	// While one transaction holds the turn, another that gives up waiting
	// gets its context's error, and the holder still commits.
	tx, err := client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gaveUp, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := client.Tx(gaveUp); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting for the turn with a cancelled context: %v, want context.Canceled", err)
	}
	if err := tx.User.UpdateOneID(u.ID).SetEmail("held@example.com").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := client.User.Get(ctx, u.ID); *got.Email != "held@example.com" {
		t.Errorf("the holder's write: %q", *got.Email)
	}
}
