package purge_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestS3FaultsDuringDelete: whatever S3 does wrong (refuses connections,
// answers 500 or 503 SlowDown, hangs past the inline timeout, or acts but
// cuts its response half-way), the delete succeeds for the caller, the
// object stays known as a pending purge, and it is removed once S3 behaves.
func TestS3FaultsDuringDelete(t *testing.T) {
	t.Parallel()
	for _, fault := range []struct {
		name string
		mode faultproxy.Mode
	}{
		{"connection refused", faultproxy.Refuse},
		{"500 InternalError", faultproxy.InternalError},
		{"503 SlowDown", faultproxy.Unavailable},
		{"slower than the inline timeout", faultproxy.Slow},
		{"response cut half-way", faultproxy.Cut},
	} {
		t.Run(fault.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.PurgeInlineTimeout = 300 * time.Millisecond }})
			_, key := env.NewUser()
			up := env.MustUpload(key, "a.txt", []byte("a"))

			env.S3.SetDelay(2 * time.Second)
			env.S3.SetMode(fault.mode)
			if res := env.DeleteREST(key, up.ID); res.Status != 200 {
				t.Fatalf("delete during the fault: %d %s", res.Status, res.Body)
			}
			if res := env.DeleteREST(key, up.ID); res.Status != 404 {
				t.Fatalf("repeat during the fault: %d %s", res.Status, res.Body)
			}
			if n := env.PendingPurges(); n != 1 {
				t.Fatalf("pending purges = %d, want 1: nothing confirmed the object gone", n)
			}
			if fault.mode != faultproxy.Cut && fault.mode != faultproxy.Slow && !env.ObjectExists(up.ObjectKey) {
				t.Fatal("object gone although S3 failed (is the proxy in the path?)")
			}

			env.S3.SetMode(faultproxy.Pass)
			env.Eventually(10*time.Second, "object purged once S3 behaves", func() bool {
				return !env.ObjectExists(up.ObjectKey) && env.PendingPurges() == 0
			})
		})
	}
}

// TestPurgeSurvivesRestart: a purge that could not finish before the
// service stopped is finished by the next start.
func TestPurgeSurvivesRestart(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	// Objects are removed one by one (DELETE) or many at a time (POST
	// ?delete, DeleteObjects): count the keys either way.
	var deletes atomic.Int64
	env.S3.Observe(func(r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			deletes.Add(1)
		case r.Method == http.MethodPost && r.URL.Query().Has("delete"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			deletes.Add(int64(strings.Count(string(body), "<Key>")))
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
		t.Errorf("S3 was asked to delete %d objects, want %d (each once)", deletes.Load(), n)
	}
	if len(env.ObjectKeys()) != 0 {
		t.Errorf("objects left: %v", env.ObjectKeys())
	}
}
