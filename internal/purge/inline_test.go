package purge_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/purge"
)

// TestInlineAttempt: right after a delete, one purge is attempted alone and
// several as one batch, even when the caller has gone; what is purged is
// done, and nothing to purge asks S3 nothing.
func TestInlineAttempt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	keys := w.storeObjects(4)
	traffic := w.watchS3()
	requests := w.S3.Requests()
	ctx := context.Background()

	if n := w.purger().AttemptInline(ctx); n != 0 || w.S3.Requests() != requests {
		t.Errorf("AttemptInline of nothing = %d, with %d S3 requests", n, w.S3.Requests()-requests)
	}
	if n := w.purger().AttemptInline(ctx, w.scheduled(keys[0])...); n != 1 {
		t.Errorf("AttemptInline of one = %d purged, want 1", n)
	}
	if n := w.purger().AttemptInline(ctx, w.scheduled(keys[1:3]...)...); n != 2 {
		t.Errorf("AttemptInline of two = %d purged, want 2", n)
	}
	if requests, batched := traffic.deleteObjects(); requests != 1 || batched != 2 {
		t.Errorf("%d DeleteObjects requests for %d keys, want the two in one", requests, batched)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel() // the caller hung up
	if n := w.purger().AttemptInline(gone, w.scheduled(keys[3])...); n != 1 {
		t.Errorf("AttemptInline after the caller left = %d purged, want 1", n)
	}
	w.allPurged(keys)
}

// TestInlineFailure: an inline attempt that fails leaves the purge to the
// background loop, after the backoff of a first failure.
func TestInlineFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	keys := w.storeObjects(3)
	w.S3.SetMode(faultproxy.Refuse)
	for _, batch := range [][]string{keys[:1], keys[1:]} {
		jobs := w.scheduled(batch...)
		before := time.Now()
		if n := w.purger().AttemptInline(context.Background(), jobs...); n != 0 {
			t.Errorf("AttemptInline of %d during an outage = %d purged", len(jobs), n)
		}
		after := time.Now()
		for _, job := range jobs {
			row := w.row(job.ID)
			if row == nil {
				t.Fatal("a failed purge's row is gone")
			}
			if row.Attempts != 1 || row.LastError == "" {
				t.Errorf("attempts %d, last error %q; want the one failed attempt", row.Attempts, row.LastError)
			}
			within(t, "next attempt", row.NextAttemptAt, before.Add(purge.MinBackoff/2), after.Add(purge.MinBackoff))
		}
	}
}

// TestInlinePause: when S3 lets an inline clean-up run out of the inline
// timeout, the clean-ups that follow (a request's later deletes, and other
// requests') do not call S3 at all for a while and leave their purges due
// at once for the background loop. After the pause, a clean-up tries S3
// again, with its own timeout.
func TestInlinePause(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		pauseOver   bool
		secondTries bool
	}{
		{"within the pause", false, false},
		{"after the pause", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, func(c *config.Config) {
				c.PurgeInlineTimeout = 500 * time.Millisecond
				c.PurgeMaxBackoff = time.Hour
			})
			keys := w.storeObjects(2)
			first, second := w.scheduled(keys[0])[0], w.scheduled(keys[1])[0]
			w.S3.SetDelay(time.Minute)
			w.S3.SetMode(faultproxy.Slow)
			ctx := context.Background()

			requests := w.S3.Requests()
			if n := w.purger().AttemptInline(ctx, first); n != 0 {
				t.Fatalf("AttemptInline = %d purged while S3 hangs", n)
			}
			if w.S3.Requests() == requests {
				t.Fatal("the first clean-up did not try S3")
			}
			if tc.pauseOver {
				w.purger().EndInlinePause()
			}
			requests = w.S3.Requests()
			if n := w.purger().AttemptInline(ctx, second); n != 0 {
				t.Fatalf("AttemptInline = %d purged while S3 hangs", n)
			}
			after := time.Now()
			if tried := w.S3.Requests() > requests; tried != tc.secondTries {
				t.Errorf("second clean-up called S3: %v, want %v", tried, tc.secondTries)
			}
			row := w.row(second.ID)
			switch {
			case row == nil:
				t.Fatal("the second purge's row is gone")
			case tc.secondTries:
				if row.LastError == "" {
					t.Error("the second clean-up's failure is not recorded")
				}
			default:
				if row.NextAttemptAt.After(after) || row.Attempts != 1 || row.LastError != "" {
					t.Errorf("untried purge: due %s, attempts %d, error %q; want due now, untouched otherwise",
						time.Until(row.NextAttemptAt), row.Attempts, row.LastError)
				}
				w.notLogged("make purges due")
			}
		})
	}
}
