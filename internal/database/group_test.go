package database

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/user"
)

// groupWorld is a SQLite database whose commits are counted, and a Group
// of it.
type groupWorld struct {
	client  *ent.Client
	group   *Group
	commits atomic.Int32
}

func newGroupWorld(t *testing.T) *groupWorld {
	t.Helper()
	w := &groupWorld{}
	path := filepath.Join(t.TempDir(), "group.db")
	t.Cleanup(Observe(path, func(statement string) {
		if statement == "COMMIT" {
			w.commits.Add(1)
		}
	}))
	client, err := Open(context.Background(), SQLiteURL(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	w.client, w.group = client, NewGroup(client)
	return w
}

// held runs callers concurrently while the turn to write is held, so that
// they queue in the group together, then lets them go; it returns once
// every caller is done.
func (w *groupWorld) held(t *testing.T, callers ...func()) {
	t.Helper()
	hold, err := w.client.Tx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	arrived := w.arrived()
	var done sync.WaitGroup
	for _, caller := range callers {
		done.Go(caller)
	}
	// The first group waits for the turn; the rest queue behind it.
	deadline := time.Now().Add(10 * time.Second)
	for w.arrived()-arrived < len(callers) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers arrived", w.arrived()-arrived, len(callers))
		}
		time.Sleep(time.Millisecond)
	}
	if err := hold.Commit(); err != nil {
		t.Fatal(err)
	}
	done.Wait()
}

func (w *groupWorld) arrived() int {
	w.group.mu.Lock()
	defer w.group.mu.Unlock()
	return w.group.arrived
}

func addUser(email string) func(ctx context.Context, tx *ent.Tx) error {
	return func(ctx context.Context, tx *ent.Tx) error {
		return tx.User.Create().SetEmail(email).Exec(ctx)
	}
}

// TestGroupSharesCommits: callers that arrive while a commit is under way
// share the next one; every one's work is there once Do returns.
func TestGroupSharesCommits(t *testing.T) {
	t.Parallel()
	w := newGroupWorld(t)
	const callers = 20
	errs := make([]error, callers)
	fns := make([]func(), callers)
	for i := range fns {
		fns[i] = func() { errs[i] = w.group.Do(context.Background(), addUser(fmt.Sprintf("%d@example.com", i))) }
	}
	before := w.commits.Load()
	w.held(t, fns...)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := w.client.User.Query().CountX(context.Background()); n != callers {
		t.Errorf("%d users, want %d", n, callers)
	}
	// The held transaction's, the first caller's group, and the rest's.
	if commits := w.commits.Load() - before; commits > 3 {
		t.Errorf("%d commits for %d callers, want at most 3", commits, callers)
	}
}

// TestGroupIsolatesFailures: in one shared transaction, a caller whose
// work fails or panics has its work undone and hears of it; the others'
// work commits.
func TestGroupIsolatesFailures(t *testing.T) {
	t.Parallel()
	w := newGroupWorld(t)
	ctx := context.Background()
	planted := errors.New("planted")
	var failed, succeeded error
	var panicked any
	w.held(t,
		func() {
			failed = w.group.Do(ctx, func(ctx context.Context, tx *ent.Tx) error {
				if err := addUser("failed@example.com")(ctx, tx); err != nil {
					return err
				}
				return planted
			})
		},
		func() { succeeded = w.group.Do(ctx, addUser("ok@example.com")) },
		func() {
			defer func() { panicked = recover() }()
			_ = w.group.Do(ctx, func(ctx context.Context, tx *ent.Tx) error {
				if err := addUser("panicked@example.com")(ctx, tx); err != nil {
					return err
				}
				panic("planted panic")
			})
		},
		func() { _ = w.group.Do(ctx, addUser("ok2@example.com")) },
	)
	if !errors.Is(failed, planted) || succeeded != nil || panicked != "planted panic" {
		t.Fatalf("failed: %v, succeeded: %v, panicked: %v", failed, succeeded, panicked)
	}
	emails := w.client.User.Query().Order(ent.Asc(user.FieldEmail)).Select(user.FieldEmail).StringsX(ctx)
	if fmt.Sprint(emails) != "[ok2@example.com ok@example.com]" {
		t.Errorf("users %v, want only the two whose work succeeded", emails)
	}
}

// TestGroupTooLate: a caller whose context is done before its work begins
// gets its context's error, and nothing of its work is done.
func TestGroupTooLate(t *testing.T) {
	t.Parallel()
	w := newGroupWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := w.group.Do(ctx, func(context.Context, *ent.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Do = %v, ran %v", err, ran)
	}
}
