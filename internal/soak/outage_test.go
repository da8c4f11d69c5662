//go:build soak

package soak

import (
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestS3Outage: S3 refuses every connection for 30 s while 1,000 deletes
// arrive. Every delete gets its 200 (the record is gone), and every object
// is purged within 60 s of S3 coming back; no object is left orphaned. The
// purger runs with the production defaults.
func TestS3Outage(t *testing.T) {
	const n, workers, outage = 1000, 32, 30 * time.Second
	defaults := config.Defaults()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.PurgePollInterval = defaults.PurgePollInterval
		c.PurgeMaxBackoff = defaults.PurgeMaxBackoff
		c.PurgeInlineTimeout = defaults.PurgeInlineTimeout
	}})
	_, key := env.NewUser()
	ids := uploadMany(t, env.URL, key, n, workers)
	objects := len(env.ObjectKeys())

	env.S3.SetMode(faultproxy.Refuse)
	began := time.Now()
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	// The deletes arrive evenly over the outage, 32 callers at a time.
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				time.Sleep(time.Until(began.Add(outage * time.Duration(i) / n)))
				status, _, err := deleteREST(env.URL, key, ids[i])
				if err != nil {
					t.Error(err)
				}
				statuses <- status
			}
		})
	}
	wg.Wait()
	close(statuses)
	answeredIn := time.Since(began)
	time.Sleep(time.Until(began.Add(outage)))
	pendingAtReturn := env.PendingPurges()
	env.S3.SetMode(faultproxy.Pass)
	back := time.Now()

	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	for env.PendingPurges() > 0 && time.Since(back) < 2*time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(back)
	left := len(env.ObjectKeys())
	t.Logf("FIGURE S3 outage: %d of %d objects stored; %d deletes during a %s outage answered in %s: statuses %v; "+
		"%d purges pending when S3 returned; all purged %s after it returned; %d objects left; %d pending purges",
		objects, n, n, outage, answeredIn.Round(time.Millisecond), counts, pendingAtReturn, drain.Round(time.Millisecond), left, env.PendingPurges())
	if counts[200] != n || pendingAtReturn != n || drain > 60*time.Second || left != 0 {
		t.Error("want every delete answered 200, every purge pending during the outage and done within 60 s after")
	}
}
