//go:build soak

package soak

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/idempotency"
)

// TestCrashSafety drives 10,000 deletes, 32 at a time, against the server
// binary while SIGKILLing it at 5 random moments and restarting it. Then,
// with the server stopped: every acknowledged delete's record and object are
// gone, every record still present has its object, and no object is left
// that neither a record nor a pending purge knows about. A retry whose
// first try died with the server may answer 404: the delete was done, and
// nothing tells the retry so.
func TestCrashSafety(t *testing.T) { crashSoak(t, false) }

// TestCrashSafetyWithKeys is TestCrashSafety with each delete sent with an
// Idempotency-Key of its upload's own, the same on every retry: a retry
// whose first try died with the server must answer 200 (the stored answer,
// or the effect the delete recorded in its own transaction), never 404. A
// retry that finds the key still leased by the killed instance (409, for
// up to idempotency.Lease) waits and tries again, as a client would.
func TestCrashSafetyWithKeys(t *testing.T) { crashSoak(t, true) }

func crashSoak(t *testing.T, withKeys bool) {
	const uploads, workers, kills = 10000, 32, 5
	srv := newServer(t, append(s3Settings(t), "PURGE_POLL_INTERVAL=200ms", "PURGE_MAX_BACKOFF=2s", "RATE_LIMIT=0")...)
	srv.start()
	userID, key := srv.newUser("crash@example.com")
	seedStart := time.Now()
	ids := uploadMany(t, srv.url(), key, uploads, workers)
	t.Logf("seeded %d uploads in %s", uploads, time.Since(seedStart).Round(time.Millisecond))

	// Kill after these many answered deletes.
	var killAt []int64
	for range kills {
		killAt = append(killAt, 500+rand.Int64N(uploads-1000))
	}
	slices.Sort(killAt)

	var (
		mu            sync.Mutex
		acked         = map[string]bool{} // answered 200
		notFoundAfter int                 // 404 for an id whose earlier try got no answer
		unexpected    []string
		answered      atomic.Int64
		restarts      int
		// With keys:
		retried  int          // ids whose earlier try got no answer
		replayed int          // 200s marked Idempotent-Replayed
		inUse    atomic.Int64 // 409s: the key still leased by the killed instance, tried again
	)
	queue := make(chan string, len(ids))
	for _, i := range rand.Perm(len(ids)) {
		queue <- ids[i]
	}
	close(queue)

	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for _, at := range killAt {
			for answered.Load() < at {
				time.Sleep(time.Millisecond)
			}
			// Killed with requests in flight: no lock holds the callers back.
			srv.kill()
			srv.start()
			restarts++
		}
	}()

	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range queue {
				idempotencyKey := ""
				if withKeys {
					idempotencyKey = "crash-" + id // one per upload, resent on every retry
				}
				unanswered := false
				var firstInUse time.Time
				for attempt := 1; ; attempt++ {
					a, err := deleteRESTWithKey(srv.url(), key, id, idempotencyKey)
					if err != nil { // the server died under this request: its outcome is unknown
						unanswered = true
						time.Sleep(20 * time.Millisecond)
						continue
					}
					// The killed instance's lease on the key lapses within
					// idempotency.Lease of its death; a 409 long after that
					// is a key held for ever, and counted as unexpected.
					if withKeys && a.status == 409 && unanswered {
						if firstInUse.IsZero() {
							firstInUse = time.Now()
						}
						if time.Since(firstInUse) < 3*idempotency.Lease {
							inUse.Add(1)
							time.Sleep(backoff.Delay(attempt, 50*time.Millisecond, time.Second))
							continue
						}
					}
					answered.Add(1)
					mu.Lock()
					if unanswered {
						retried++
					}
					switch {
					case a.status == 200:
						acked[id] = true
						if a.replayed {
							replayed++
						}
					case a.status == 404 && unanswered:
						notFoundAfter++
					default:
						unexpected = append(unexpected, fmt.Sprintf("%s: %d %s", id, a.status, a.body))
					}
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	<-killerDone
	deleteTime := time.Since(began)

	// Let the restarted server finish purges left by the crashes, then stop it.
	drainStart := time.Now()
	for srv.pendingPurges() > 0 && time.Since(drainStart) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop()
	st := readState(t, srv)
	drained := len(st.purges) == 0

	var stillThere []string
	for id := range acked {
		if _, ok := st.records[id]; ok {
			stillThere = append(stillThere, id)
		}
	}
	var notDeleted int
	for _, id := range ids {
		if _, ok := st.records[id]; ok {
			notDeleted++
		}
	}
	var objectLeft []string
	for id := range acked {
		if st.objects["uploads/"+userID+"/"+id] {
			objectLeft = append(objectLeft, id)
		}
	}
	orphans, lost := st.orphans(), st.lost()
	name, retries := "crash safety", ""
	if withKeys {
		name = "crash safety with Idempotency-Key"
		retries = fmt.Sprintf(" (%d retried after an unanswered try: %d of them replayed, %d 409s while a killed instance's lease held the key, tried again)",
			retried, replayed, inUse.Load())
	}
	t.Logf("FIGURE %s: %d deletes (32 at a time) in %s with %d SIGKILLs and restarts: "+
		"%d acknowledged 200%s, %d 404 after an unanswered try, %d unexpected answers; "+
		"afterwards %d acknowledged deletes with a record left, %d with an object left, %d uploads not deleted, %d records whose object is gone, "+
		"%d orphaned objects, %d pending purges after %s",
		name, uploads, deleteTime.Round(time.Millisecond), restarts, len(acked), retries, notFoundAfter, len(unexpected),
		len(stillThere), len(objectLeft), notDeleted, len(lost), len(orphans), len(st.purges), time.Since(drainStart).Round(time.Millisecond))
	if restarts != kills || len(unexpected) > 0 || len(stillThere) > 0 || len(objectLeft) > 0 || notDeleted > 0 || len(lost) > 0 || len(orphans) > 0 || !drained {
		t.Errorf("unexpected: %v; orphans %v; lost %v", first(unexpected), first(orphans), first(lost))
	}
	if len(acked)+notFoundAfter != uploads {
		t.Errorf("%d answers for %d uploads", len(acked)+notFoundAfter, uploads)
	}
	if withKeys && notFoundAfter > 0 {
		t.Errorf("%d retries sent with their delete's Idempotency-Key answered 404", notFoundAfter)
	}
}

func first(s []string) []string { return s[:min(len(s), 5)] }
