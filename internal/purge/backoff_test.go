package purge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestFailedPurgeBacksOff: a purge that fails is due again after a delay
// that doubles with each failure, from a second up to MaxBackoff, less a
// random part of up to half (jitter): never sooner than half of it, never
// later than all of it.
func TestFailedPurgeBacksOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	w.S3.SetMode(faultproxy.Refuse)
	for _, tc := range []struct {
		name         string
		failedBefore int
		delay        time.Duration
	}{
		{"first failure", 0, purge.MinBackoff},
		{"second failure", 1, 2 * purge.MinBackoff},
		{"third failure", 2, 4 * purge.MinBackoff},
		{"tenth failure", 9, 512 * purge.MinBackoff},
		{"capped by MaxBackoff", 12, time.Hour},
		{"far past the cap", 40, time.Hour},
		{"after a very long outage", 5000, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := w.in(t)
			job := w.due("backoff/" + tc.name)[0]
			job = w.Client().ObjectPurge.UpdateOne(job).SetAttempts(tc.failedBefore).SaveX(context.Background())

			before := time.Now()
			attempted, purged, err := w.purger().RunOnce(context.Background())
			after := time.Now()
			if err != nil || attempted != 1 || purged != 0 {
				t.Fatalf("RunOnce = %d attempted, %d purged, %v; want the one attempt failed", attempted, purged, err)
			}
			row := w.row(job.ID)
			if row == nil {
				t.Fatal("the failed purge's row is gone")
			}
			if row.Attempts != tc.failedBefore+1 || row.LastError == "" {
				t.Errorf("attempts %d, last error %q; want %d and S3's error", row.Attempts, row.LastError, tc.failedBefore+1)
			}
			within(t, "next attempt", row.NextAttemptAt, before.Add(tc.delay/2), after.Add(tc.delay))
			w.Client().ObjectPurge.DeleteOne(row).ExecX(context.Background())
		})
	}
	if strings.Contains(w.Logs.String(), "record purge failure") {
		t.Errorf("recording a failure failed:\n%s", w.Logs)
	}
}

// TestNoBackoff: with MaxBackoff set to 0, a failed purge is due again at
// once, for the next pass.
func TestNoBackoff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = 0 })
	w.S3.SetMode(faultproxy.Refuse)
	job := w.due("no-backoff")[0]
	if _, purged, err := w.purger().RunOnce(context.Background()); err != nil || purged != 0 {
		t.Fatalf("RunOnce = %d purged, %v; want the attempt failed", purged, err)
	}
	after := time.Now()
	if row := w.row(job.ID); row == nil || row.Attempts != 1 || row.NextAttemptAt.After(after) {
		t.Errorf("failed purge = %+v, want due again at once", row)
	}
}

// TestBackoffIsJittered: purges failed by one outage do not all come due
// at the same instant, but spread over the backoff's random half.
func TestBackoffIsJittered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	w.S3.SetMode(faultproxy.Unavailable)
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = fmt.Sprintf("jitter/%02d", i)
	}
	jobs := w.due(keys...)
	w.purger().AttemptBatch(context.Background(), jobs)
	var first, last time.Time
	for _, job := range jobs {
		row := w.row(job.ID)
		if row == nil {
			t.Fatal("a failed purge's row is gone")
		}
		if first.IsZero() || row.NextAttemptAt.Before(first) {
			first = row.NextAttemptAt
		}
		if row.NextAttemptAt.After(last) {
			last = row.NextAttemptAt
		}
	}
	// Spread uniformly over half a second, 16 retries all fall within 150ms
	// of each other with a probability below one in a million.
	if spread := last.Sub(first); spread < 150*time.Millisecond {
		t.Errorf("%d purges failed together come due within %s of each other", len(jobs), spread)
	}
}

// TestFailureRecorded: the last failure is kept on the purge for
// operators, cut to 500 bytes (S3 errors can quote long keys), whether the
// purge was attempted alone or in a batch.
func TestFailureRecorded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 60)
	w := newWorld(t, nil)
	for _, tc := range []struct {
		name, err, want string
	}{
		{"short", "SlowDown: please reduce your request rate", "SlowDown: please reduce your request rate"},
		{"long", long, long[:500]},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name + " alone"
			if batch {
				name = tc.name + " in a batch"
			}
			t.Run(name, func(t *testing.T) {
				w := w.in(t)
				objects := newFakeObjects()
				objects.fail = func(string) error { return errors.New(tc.err) }
				p := w.fakePurger(objects, &testenv.SyncBuffer{}, purge.Options{MaxBackoff: time.Hour})
				jobs := w.due("a", "b")
				if batch {
					if purged := p.AttemptBatch(context.Background(), jobs); purged != 0 {
						t.Fatalf("AttemptBatch = %d purged, want 0", purged)
					}
				} else {
					jobs = jobs[:1]
					if err := p.Attempt(context.Background(), jobs[0]); err == nil || err.Error() != tc.err {
						t.Fatalf("Attempt = %v, want the discarder's error", err)
					}
				}
				for _, job := range jobs {
					if row := w.row(job.ID); row == nil || row.LastError != tc.want {
						t.Errorf("last error %q, want %q", lastError(row), tc.want)
					}
				}
			})
		}
	}
}

func lastError(row *ent.ObjectPurge) string {
	if row == nil {
		return "(row gone)"
	}
	return row.LastError
}
