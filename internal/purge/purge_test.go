package purge_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestS3DownDuringDelete: the delete succeeds for the caller while S3 is
// unreachable; the object stays known as a pending purge and is removed once
// S3 is back.
func TestS3DownDuringDelete(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode faultproxy.Mode
	}{{"connection refused", faultproxy.Refuse}, {"503 SlowDown", faultproxy.Unavailable}} {
		t.Run(mode.name, func(t *testing.T) {
			env := testenv.New(t, testenv.Options{})
			_, key := env.NewUser()
			up := env.MustUpload(key, "a.txt", []byte("a"))

			env.S3.SetMode(mode.mode)
			if res := env.DeleteREST(key, up.ID); res.Status != 200 {
				t.Fatalf("delete during outage: %d %s", res.Status, res.Body)
			}
			if res := env.DeleteREST(key, up.ID); res.Status != 404 {
				t.Fatalf("repeat during outage: %d %s", res.Status, res.Body)
			}
			if !env.ObjectExists(up.ObjectKey) {
				t.Fatal("object gone although S3 was unreachable (is the proxy in the path?)")
			}
			if n := env.PendingPurges(); n != 1 {
				t.Fatalf("pending purges = %d, want 1", n)
			}

			env.S3.SetMode(faultproxy.Pass)
			env.Eventually(10*time.Second, "object purged after S3 returned", func() bool {
				return !env.ObjectExists(up.ObjectKey) && env.PendingPurges() == 0
			})
		})
	}
}

// TestPurgeSurvivesRestart: a purge that could not finish before the
// service stopped is finished by the next start.
func TestPurgeSurvivesRestart(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))

	env.S3.SetMode(faultproxy.Refuse)
	if res := env.DeleteREST(key, up.ID); res.Status != 200 {
		t.Fatalf("delete during outage: %d %s", res.Status, res.Body)
	}
	env.Restart(testenv.Options{NoPurgeLoop: true})
	env.S3.SetMode(faultproxy.Pass)
	if !env.ObjectExists(up.ObjectKey) || env.PendingPurges() != 1 {
		t.Fatal("want the object still stored and its purge pending after the restart")
	}

	env.Restart(testenv.Options{})
	env.Eventually(10*time.Second, "object purged by the restarted service", func() bool {
		return !env.ObjectExists(up.ObjectKey) && env.PendingPurges() == 0
	})
}

// TestClaimIsExclusive: of two purgers racing for the same due purges, each
// purge is attempted by exactly one.
func TestClaimIsExclusive(t *testing.T) {
	env := testenv.New(t, testenv.Options{
		NoPurgeLoop: true,
		Configure:   func(c *config.Config) { c.PurgeInlineTimeout = 50 * time.Millisecond },
	})
	_, key := env.NewUser()
	const n = 20
	var uploadIDs []string
	for range n {
		uploadIDs = append(uploadIDs, env.MustUpload(key, "a.txt", []byte("a")).ID)
	}
	env.S3.SetMode(faultproxy.Refuse)
	for _, id := range uploadIDs {
		if res := env.DeleteREST(key, id); res.Status != 200 {
			t.Fatalf("delete: %d", res.Status)
		}
	}
	env.S3.SetMode(faultproxy.Pass)
	// Make every purge due now rather than after its lease.
	if _, err := env.Client().ObjectPurge.Update().SetNextAttemptAt(time.Now().Add(-time.Second)).Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	var deletes atomic.Int64
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		}
	})
	done := make(chan int, 2)
	for range 2 {
		go func() {
			_, purged, err := env.App.Purger.RunOnce(context.Background())
			if err != nil {
				t.Error(err)
			}
			done <- purged
		}()
	}
	total := <-done + <-done
	if total != n {
		t.Errorf("purged %d in total, want %d", total, n)
	}
	if deletes.Load() != n {
		t.Errorf("S3 saw %d DELETEs, want %d (one per object)", deletes.Load(), n)
	}
	if len(env.ObjectKeys()) != 0 {
		t.Errorf("objects left: %v", env.ObjectKeys())
	}
}
