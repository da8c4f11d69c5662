package graph_test

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/testenv"
)

// heldDeletes holds every object DELETE that reaches S3 until released:
// a purger that has claimed a purge and is removing the object.
type heldDeletes struct {
	reached chan struct{} // closed when the first DELETE arrives
	release chan struct{}
	once    sync.Once
	// releaseAll lets the held DELETEs, and every later one, through.
	releaseAll func()
}

func holdDeletes(t *testing.T, env *testenv.Env) *heldDeletes {
	h := &heldDeletes{reached: make(chan struct{}), release: make(chan struct{})}
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodDelete || r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			h.once.Do(func() { close(h.reached) })
			<-h.release
		}
	})
	var released sync.Once
	h.releaseAll = func() { released.Do(func() { close(h.release) }) }
	t.Cleanup(h.releaseAll)
	return h
}

// purgeDue makes the upload's purge due now, as the end of its restore
// window does, leaving its trash entry restorable as a restore that read
// it a moment before saw it.
func purgeDue(t *testing.T, env *testenv.Env, uploadID string) {
	t.Helper()
	if err := env.Client().ObjectPurge.Update().Where(objectpurge.UploadID(uploadID)).
		SetNextAttemptAt(time.Now().Add(-time.Second)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRacesPurgeClaim: a restore and a purger's claim of the same
// upload's purge, in every order that matters, the claim landing between
// the restore's read of the trash and its taking back of the purge
// included. Exactly one wins: the restore (the upload back, its object
// intact, no purge left) or the purge (the restore NOT_FOUND, object,
// record and trash entry gone) — never an upload listed whose object is
// gone, nor an object that nothing knows about.
func TestRestoreRacesPurgeClaim(t *testing.T) {
	t.Parallel()
	postgres := os.Getenv("TEST_DATABASE_URL") != "" // as testenv decides
	cases := []struct {
		name string
		// race restores the upload and makes the purger claim its purge in
		// some order; it returns the restore's error code ("" if restored).
		race        func(t *testing.T, env *testenv.Env, key string, u *ent.Upload) string
		wantRestore bool
	}{
		{"claimed before the restore", func(t *testing.T, env *testenv.Env, key string, u *ent.Upload) string {
			held := holdDeletes(t, env)
			purgeDue(t, env, u.ID)
			purging := runPurger(t, env)
			<-held.reached // claimed: the object is being removed
			_, code := restore(t, env, key, u.ID)
			held.releaseAll()
			<-purging
			return code
		}, false},
		{"claimed between the restore's read and its take-back", func(t *testing.T, env *testenv.Env, key string, u *ent.Upload) string {
			held := holdDeletes(t, env)
			purgeDue(t, env, u.ID) // the window ends as the restore begins
			started := make(chan (<-chan struct{}), 1)
			graph.SetBeforeTakeBack(env.App.Resolver, func() {
				graph.SetBeforeTakeBack(env.App.Resolver, nil)
				started <- runPurger(t, env)
				if !postgres {
					// SQLite: the restore's transaction holds the write
					// lock from its start; the claim waits for it to end.
					return
				}
				select {
				case <-held.reached: // claimed and committed
				case <-time.After(10 * time.Second):
					t.Error("the purger did not claim the due purge while the restore waited")
				}
			})
			_, code := restore(t, env, key, u.ID)
			held.releaseAll()
			select {
			case purging := <-started:
				<-purging
			default:
				t.Fatal("the restore never reached its take-back")
			}
			return code
		}, false},
		{"taken back before the claim", func(t *testing.T, env *testenv.Env, key string, u *ent.Upload) string {
			_, code := restore(t, env, key, u.ID)
			purgeDue(t, env, u.ID)
			<-runPurger(t, env)
			return code
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := withTrash(time.Hour)
			opts.NoPurgeLoop = true
			env := testenv.New(t, opts)
			_, key := env.NewUser()
			u := env.MustUpload(key, "a.txt", []byte("a"))
			if res := env.DeleteREST(key, u.ID); res.Status != 200 {
				t.Fatalf("delete: %d %s", res.Status, res.Body)
			}

			code := c.race(t, env, key, u)

			ctx := context.Background()
			pending := env.PendingPurges() // and the purges that ended are recorded
			record, err := env.Client().Upload.Query().Where(upload.ID(u.ID)).Exist(ctx)
			if err != nil {
				t.Fatal(err)
			}
			trashed, err := env.Client().DeletedUpload.Query().Where(deletedupload.ID(u.ID)).Exist(ctx)
			if err != nil {
				t.Fatal(err)
			}
			object := env.ObjectExists(u.ObjectKey)
			got := struct {
				Code                          string
				Record, Listed, Object, Trash bool
				PendingPurges                 int
			}{code, record, listed(t, env, key, u.ID), object, trashed, pending}
			want := got
			if c.wantRestore {
				want.Code, want.Record, want.Listed, want.Object, want.Trash, want.PendingPurges = "", true, true, true, false, 0
			} else {
				want.Code, want.Record, want.Listed, want.Object, want.Trash, want.PendingPurges = "NOT_FOUND", false, false, false, false, 0
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// runPurger runs one pass of the purger; the channel closes when it ends.
func runPurger(t *testing.T, env *testenv.Env) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := env.App.Purger.RunOnce(context.Background()); err != nil {
			t.Errorf("purger: %v", err)
		}
	}()
	return done
}
