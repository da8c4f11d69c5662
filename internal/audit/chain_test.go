package audit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// trail records n events of each of the owners, one transaction each,
// and returns the ids of the first owner's events, oldest first.
func trail(t *testing.T, client *ent.Client, n int, owners ...string) []int {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		for _, owner := range owners {
			err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
				_, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, audit.Subject{ID: fmt.Sprintf("upl_%d", i), OwnerID: owner})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return client.AuditEvent.Query().Where(auditevent.OwnerID(owners[0])).Order(ent.Asc(auditevent.FieldID)).IDsX(ctx)
}

func verify(t *testing.T, client *ent.Client, user string) audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), client, user)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyCatchesTampering: an event edited (any field), removed, or
// moved in the database directly is named by verify as the first break of
// its user's chain; the other user's chain stays whole.
func TestVerifyCatchesTampering(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, problem string
		broken        int // index of the event named
		tamper        []string
	}{
		{"actor edited", "changed", 2, []string{"UPDATE audit_events SET actor = 'someone' WHERE id = $3"}},
		{"upload edited", "changed", 2, []string{"UPDATE audit_events SET upload_id = 'upl_other' WHERE id = $3"}},
		{"kind edited", "changed", 2, []string{"UPDATE audit_events SET kind = 'RESTORED' WHERE id = $3"}},
		{"request id edited", "changed", 2, []string{"UPDATE audit_events SET request_id = 'req_x' WHERE id = $3"}},
		{"time edited", "changed", 2, []string{"UPDATE audit_events SET created_at = '2001-01-01 00:00:00+00:00' WHERE id = $3"}},
		{"seq edited", "changed", 2, []string{"UPDATE audit_events SET seq = 9 WHERE id = $3"}},
		{"hash edited", "changed", 2, []string{"UPDATE audit_events SET hash = prev_hash WHERE id = $3"}},
		{"hash erased", "changed", 2, []string{"UPDATE audit_events SET hash = NULL, prev_hash = NULL, seq = NULL WHERE id = $3"}},
		{"moved to another user", "removed", 3, []string{"UPDATE audit_events SET owner_id = 'usr_other' WHERE id = $3"}},
		{"removed", "removed", 3, []string{"DELETE FROM audit_events WHERE id = $3"}},
		{"first removed", "removed", 1, []string{"DELETE FROM audit_events WHERE id = $1"}},
		{"last removed", "removed", 3, []string{"DELETE FROM audit_events WHERE id = $5"}},
		{"swapped", "reordered", 2, []string{
			"UPDATE audit_events SET id = -1 WHERE id = $3", "UPDATE audit_events SET id = $3 WHERE id = $4", "UPDATE audit_events SET id = $4 WHERE id = -1",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			client := testenv.OpenDatabase(t)
			ids := trail(t, client, 5, "usr_a", "usr_other")
			if r := verify(t, client, ""); len(r.Breaks) != 0 || r.Events != 10 || r.Users != 2 {
				t.Fatalf("before: %+v", r)
			}
			for _, stmt := range c.tamper {
				// $1 … $5: the ids of usr_a's five events.
				args := []any{ids[0], ids[1], ids[2], ids[3], ids[4]}
				query := stmt
				for i := len(args); i >= 1; i-- {
					query = strings.ReplaceAll(query, fmt.Sprintf("$%d", i), fmt.Sprint(args[i-1]))
				}
				if _, err := client.ExecContext(context.Background(), query); err != nil {
					t.Fatal(err)
				}
			}
			r := verify(t, client, "usr_a")
			want := ids[c.broken]
			if c.name == "last removed" {
				want = ids[3]
			}
			if len(r.Breaks) != 1 || r.Breaks[0].EventID != want || r.Breaks[0].Problem != c.problem {
				t.Fatalf("usr_a: %+v, want event %d %s", r.Breaks, want, c.problem)
			}
			if c.name != "moved to another user" {
				if r := verify(t, client, "usr_other"); len(r.Breaks) != 0 {
					t.Errorf("usr_other: %+v", r.Breaks)
				}
			}
		})
	}
}

// TestVerifyAfterPruning: AUDIT_RETENTION's pruning of the oldest events
// leaves a chain that verifies from the first kept event; removing the
// first kept one then is caught.
func TestVerifyAfterPruning(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	ids := trail(t, client, 5, "usr_a", "usr_b")
	third := client.AuditEvent.GetX(ctx, ids[2])
	if n, err := audit.Prune(ctx, client, third.CreatedAt); err != nil || n < 2 {
		t.Fatalf("pruned %d (%v)", n, err)
	}
	if r := verify(t, client, ""); len(r.Breaks) != 0 || r.Users != 2 {
		t.Fatalf("after pruning: %+v", r)
	}
	if _, err := client.ExecContext(ctx, "DELETE FROM audit_events WHERE id = $1", ids[2]); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, client, "usr_a"); len(r.Breaks) != 1 || r.Breaks[0].EventID != ids[3] || r.Breaks[0].Problem != "removed" {
		t.Fatalf("after the first kept was removed: %+v", r.Breaks)
	}
}

// TestChainConcurrentWriters: many transactions recording events for one
// owner at once (PostgreSQL runs them side by side) leave one linear chain,
// whether they record several owners' events (the heads taken) or one
// owner's (the head moved on from this process's guess).
func TestChainConcurrentWriters(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	const writers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				subjects := []audit.Subject{{ID: fmt.Sprintf("upl_%d_%d", w, i), OwnerID: "usr_busy"}}
				if i%2 == 0 {
					subjects = append(subjects,
						audit.Subject{ID: fmt.Sprintf("upl_%d_%d", w, i), OwnerID: "usr_quiet"},
						audit.Subject{ID: fmt.Sprintf("upl_%d_%db", w, i), OwnerID: "usr_busy"})
				}
				err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
					_, err := audit.Record(ctx, tx, audit.Janitor, audit.Expired, subjects...)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r := verify(t, client, "")
	if len(r.Breaks) != 0 || r.Events != 2*writers*each || r.Users != 2 {
		t.Fatalf("%+v", r)
	}
	if top := client.AuditEvent.Query().Where(auditevent.OwnerID("usr_busy")).Order(ent.Desc(auditevent.FieldID)).FirstX(ctx); top.Seq != 3*writers*each/2 {
		t.Errorf("the last event's seq is %d, want %d", top.Seq, 3*writers*each/2)
	}
}

// TestRecordReturnsHashes: in the order of the subjects, each its event's.
func TestRecordReturnsHashes(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	var hashes []audit.Hash
	err := database.WithTx(ctx, client, func(tx *ent.Tx) (err error) {
		hashes, err = audit.Record(ctx, tx, audit.Purger, audit.Purged,
			audit.Subject{ID: "upl_1", OwnerID: "usr_b"}, audit.Subject{ID: "upl_2", OwnerID: "usr_a"}, audit.Subject{ID: "upl_3", OwnerID: "usr_b"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"upl_1", "upl_2", "upl_3"} {
		e := client.AuditEvent.Query().Where(auditevent.UploadID(id)).OnlyX(ctx)
		if string(e.Hash) != string(hashes[i][:]) {
			t.Errorf("%s: hash %x, Record said %s", id, e.Hash, hashes[i])
		}
	}
}

// recorder returns a function that records one event of owner's in a
// transaction of its own, committed or rolled back.
func recorder(t *testing.T, client *ent.Client, owner string) func(uploadID string, rollBack bool) {
	return func(uploadID string, rollBack bool) {
		t.Helper()
		ctx := context.Background()
		undone := fmt.Errorf("rolled back")
		err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
			if _, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, audit.Subject{ID: uploadID, OwnerID: owner}); err != nil {
				return err
			}
			if rollBack {
				return undone
			}
			return nil
		})
		if err != nil && (!rollBack || err != undone) {
			t.Fatal(err)
		}
	}
}

// TestChainAfterRollback: an owner's events recorded in a transaction that
// rolls back leave no mark on the chain: the next event follows the last
// committed one (seq and prev), though this process last moved the head
// past it.
func TestChainAfterRollback(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	record := recorder(t, client, "usr_undone")
	record("upl_1", false)
	record("upl_1", false)
	record("upl_2", true)
	record("upl_3", false)
	record("upl_4", true)
	record("upl_4", true)
	record("upl_5", false)
	r := verify(t, client, "usr_undone")
	if len(r.Breaks) != 0 || r.Events != 4 {
		t.Fatalf("%+v", r)
	}
	events := client.AuditEvent.Query().Where(auditevent.OwnerID("usr_undone")).Order(ent.Asc(auditevent.FieldID)).AllX(ctx)
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Errorf("event %d (%s): seq %d, want %d", i, e.UploadID, e.Seq, i+1)
		}
	}
}

// TestChainAfterAnotherProcess: this process remembers a head (seq 2) that
// a rolled-back transaction left; another process then moves the chain to
// seq 2 itself, with another event. The next event here follows the other
// process's, whose hash differs from the one remembered at the same seq.
func TestChainAfterAnotherProcess(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	record := recorder(t, client, "usr_stale")
	record("upl_1", false)
	record("upl_2a", true)
	restore := audit.SaveHints()
	audit.ForgetHints() // the other process, which remembers nothing
	record("upl_2b", false)
	restore()
	record("upl_3", false)
	if r := verify(t, client, "usr_stale"); len(r.Breaks) != 0 || r.Events != 3 {
		t.Fatalf("%+v", r)
	}
}

// TestChainGuessHolds: an owner's events move on the head this process
// wrote last from its guess (one statement fewer), on either engine: the
// guess's hash compares equal to the stored one. Not parallel: the count
// is the process's.
func TestChainGuessHolds(t *testing.T) {
	client := testenv.OpenDatabase(t)
	record := recorder(t, client, "usr_guessed")
	record("upl_1", false) // no guess yet
	before := audit.GuessesHeld()
	record("upl_2", false)
	record("upl_3", false)
	if held := audit.GuessesHeld() - before; held != 2 {
		t.Errorf("%d of 2 events moved the head on from the guess", held)
	}
	if r := verify(t, client, "usr_guessed"); len(r.Breaks) != 0 || r.Events != 3 {
		t.Fatalf("%+v", r)
	}
}
