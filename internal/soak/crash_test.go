//go:build soak

package soak

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashSafety drives 10,000 deletes, 32 at a time, against the server
// binary while SIGKILLing it at 5 random moments and restarting it. Then,
// with the server stopped: every acknowledged delete's record and object are
// gone, every record still present has its object, and no object is left
// that neither a record nor a pending purge knows about.
func TestCrashSafety(t *testing.T) {
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
				unanswered := false
				for {
					status, body, err := deleteREST(srv.url(), key, id)
					if err != nil { // the server died under this request: its outcome is unknown
						unanswered = true
						time.Sleep(20 * time.Millisecond)
						continue
					}
					answered.Add(1)
					mu.Lock()
					switch {
					case status == 200:
						acked[id] = true
					case status == 404 && unanswered:
						notFoundAfter++
					default:
						unexpected = append(unexpected, id+": "+body)
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
	t.Logf("FIGURE crash safety: %d deletes (32 at a time) in %s with %d SIGKILLs and restarts: "+
		"%d acknowledged 200, %d 404 after an unanswered try, %d unexpected answers; "+
		"afterwards %d acknowledged deletes with a record left, %d with an object left, %d uploads not deleted, %d records whose object is gone, "+
		"%d orphaned objects, %d pending purges after %s",
		uploads, deleteTime.Round(time.Millisecond), restarts, len(acked), notFoundAfter, len(unexpected),
		len(stillThere), len(objectLeft), notDeleted, len(lost), len(orphans), len(st.purges), time.Since(drainStart).Round(time.Millisecond))
	if restarts != kills || len(unexpected) > 0 || len(stillThere) > 0 || len(objectLeft) > 0 || notDeleted > 0 || len(lost) > 0 || len(orphans) > 0 || !drained {
		t.Errorf("unexpected: %v; orphans %v; lost %v", first(unexpected), first(orphans), first(lost))
	}
	if len(acked)+notFoundAfter != uploads {
		t.Errorf("%d answers for %d uploads", len(acked)+notFoundAfter, uploads)
	}
}

func first(s []string) []string { return s[:min(len(s), 5)] }
