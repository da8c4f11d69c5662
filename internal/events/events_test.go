package events_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	entapikey "github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/testenv"
)

// deleteUpload deletes uploadID through REST on env, as its owner.
func deleteUpload(t *testing.T, env *testenv.Env, apiKey, uploadID string) {
	t.Helper()
	if res := env.DeleteREST(apiKey, uploadID); res.Status != http.StatusOK {
		t.Fatalf("delete %s: %d %s", uploadID, res.Status, res.Body)
	}
}

func wantEvent(t *testing.T, got event, kind, uploadID string) {
	t.Helper()
	if got.Kind != kind || got.UploadID != uploadID {
		t.Fatalf("got %s of %s (event %s), want %s of %s", got.Kind, got.UploadID, got.ID, kind, uploadID)
	}
}

// A subscription on one instance hears of a delete made on another: the
// feed reads the shared audit trail, not an in-process channel (two
// instances share a database only on PostgreSQL: TEST_DATABASE_URL).
func TestUploadEventsSeeDeletesOfAnotherInstance(t *testing.T) {
	t.Parallel()
	a := testenv.New(t, testenv.Options{})
	b := a.NewInstance()
	_, key := a.NewUser()
	upload := a.MustUpload(key, "a.txt", []byte("a"))

	events := subscribe(t, a, key, "")
	deleteUpload(t, b, key, upload.ID)
	wantEvent(t, events.nextEvent(), "DELETED", upload.ID)
}

// A client that reconnects with the id of the last event it received gets
// every event it missed, in order, then the new ones.
func TestUploadEventsResumeAfterLastEventID(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	first := env.MustUpload(key, "first.txt", []byte("1"))

	s := subscribe(t, env, key, "")
	deleteUpload(t, env, key, first.ID)
	deleted := s.nextEvent()
	wantEvent(t, deleted, "DELETED", first.ID)
	s.close()

	// Missed while disconnected: its purge, then another upload's life
	// (made once the purge is done, for the trail's order to be known).
	env.Eventually(20*time.Second, "the first purge", func() bool { return env.PendingPurges() == 0 })
	second := env.MustUpload(key, "second.txt", []byte("2"))
	deleteUpload(t, env, key, second.ID)
	env.Eventually(20*time.Second, "the purges", func() bool { return env.PendingPurges() == 0 })

	resumed := subscribe(t, env, key, deleted.ID)
	third := env.MustUpload(key, "third.txt", []byte("3")) // live, after what was missed
	wantEvent(t, resumed.nextEvent(), "PURGED", first.ID)
	wantEvent(t, resumed.nextEvent(), "CREATED", second.ID)
	wantEvent(t, resumed.nextEvent(), "DELETED", second.ID)
	wantEvent(t, resumed.nextEvent(), "PURGED", second.ID)
	wantEvent(t, resumed.nextEvent(), "CREATED", third.ID)
}

// A user's subscription never carries another user's events: the first
// event it sees is its own, made after the other's.
func TestUploadEventsAreTheViewersOwn(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, alice := env.NewUser()
	_, bob := env.NewUser()
	alicesUpload := env.MustUpload(alice, "alice.txt", []byte("a"))

	bobs := subscribe(t, env, bob, "0") // from the trail's start, too
	deleteUpload(t, env, alice, alicesUpload.ID)
	bobsUpload := env.MustUpload(bob, "bob.txt", []byte("b"))
	wantEvent(t, bobs.nextEvent(), "CREATED", bobsUpload.ID)
}

// The 21st subscription of one credential is refused with a clear error;
// closing one makes room. Another credential of the same user has its own
// allowance.
func TestSubscriptionsPerCredential(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	var open []*stream
	for range events.DefaultPerCredential {
		open = append(open, subscribe(t, env, key, ""))
	}
	opened := env.MustUpload(key, "v.txt", []byte("v"))
	for _, s := range open { // all 20 are open: they hear of it
		wantEvent(t, s.nextEvent(), "CREATED", opened.ID)
	}
	refused := subscribe(t, env, key, "")
	env.MustUpload(key, "w.txt", []byte("w")) // an event it would carry if open
	refused.wantEnd("TOO_MANY_SUBSCRIPTIONS")

	_, other, err := apikey.Create(context.Background(), env.Client(), userID)
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, env, other, "")
	upload := env.MustUpload(other, "x.txt", []byte("x"))
	wantEvent(t, s.nextEvent(), "CREATED", upload.ID)

	// The server frees a place once it sees the client went away.
	open[0].close()
	env.Eventually(20*time.Second, "a place freed", func() bool {
		s := subscribe(t, env, key, "")
		defer s.close()
		return s.status == http.StatusOK && func() bool {
			second := env.MustUpload(key, "y.txt", []byte("y"))
			m := s.next()
			return m.code() == "" && m.event.UploadID == second.ID
		}()
	})
}

// Revoking the key of an open subscription ends it with UNAUTHENTICATED.
func TestRevokedKeyEndsSubscription(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	s := subscribe(t, env, key, "")
	upload := env.MustUpload(key, "x.txt", []byte("x"))
	wantEvent(t, s.nextEvent(), "CREATED", upload.ID)

	ctx := context.Background()
	keyID := env.Client().APIKey.Query().Where(entapikey.OwnerID(userID)).OnlyIDX(ctx)
	if _, err := apikey.Revoke(ctx, env.Client(), keyID); err != nil {
		t.Fatal(err)
	}
	s.wantEnd("UNAUTHENTICATED")
}

// A change that rolled back has no event: the next event is the next
// committed change.
func TestRolledBackChangeHasNoEvent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	s := subscribe(t, env, key, "")

	ctx := context.Background()
	tx, err := env.Client().Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ghost := audit.Subject{ID: "upl_rolledback", OwnerID: userID, Filename: "ghost.txt", Status: "COMPLETED"}
	if _, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, ghost); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	upload := env.MustUpload(key, "real.txt", []byte("r"))
	wantEvent(t, s.nextEvent(), "CREATED", upload.ID)
}

// On PostgreSQL an event's id is taken at insert, not at commit: a
// transaction that took a lower id and commits after one with a higher id
// must still reach subscribers, and one that rolls back never. (Two
// owners: one owner's transactions take turns on its audit chain's head.)
func TestEventsOfConcurrentTransactionsInIDOrder(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	if env.Config.DatabaseURL == "" {
		t.Skip("SQLite takes ids in commit order: one writer at a time")
	}
	userID, key := env.NewUser()
	otherID, otherKey := env.NewUser()
	s := subscribe(t, env, key, "")
	other := subscribe(t, env, otherKey, "")
	env.Eventually(20*time.Second, "the subscriptions open", func() bool { return env.App.Events.Open() == 2 })
	ctx := context.Background()
	record := func(userID, uploadID string) *ent.Tx {
		tx, err := env.Client().Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() }) // a failed test's open one holds the schema
		if _, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, audit.Subject{ID: uploadID, OwnerID: userID, Status: "COMPLETED"}); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	for _, outcome := range []string{"commit", "rollback"} {
		early, late := "upl_early_"+outcome, "upl_late_"+outcome
		earlyTx := record(userID, early)
		if err := record(otherID, late).Commit(); err != nil {
			t.Fatal(err)
		}
		// The feed reads the trail while late is committed and early is not.
		readsAfterCommit := env.App.Events.Reads() + 2
		env.Eventually(20*time.Second, "two reads of the trail", func() bool { return env.App.Events.Reads() >= readsAfterCommit })
		finish := earlyTx.Commit
		if outcome == "rollback" {
			finish = earlyTx.Rollback
		}
		if err := finish(); err != nil {
			t.Fatal(err)
		}
		if outcome == "commit" {
			wantEvent(t, s.nextEvent(), "DELETED", early)
		}
		wantEvent(t, other.nextEvent(), "DELETED", late)
	}
}

// A server that shuts down ends its streams with SHUTTING_DOWN, then
// completes them, instead of holding its shutdown until they end.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	s := subscribe(t, env, key, "")
	upload := env.MustUpload(key, "x.txt", []byte("x"))
	wantEvent(t, s.nextEvent(), "CREATED", upload.ID)

	env.App.Events.Close() // what http.Server.Shutdown calls (server.go)
	s.wantEnd("SHUTTING_DOWN")
}
