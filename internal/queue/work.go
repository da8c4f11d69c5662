package queue

import (
	"context"
	"sync"
	"time"

	"github.com/safedelete/uploads/internal/backoff"
)

// Work runs claimed jobs until ctx ends, concurrency at a time: whenever
// jobs end it claims as many more at once (one claim for all that ended
// meanwhile), and otherwise claims every poll and whenever wake receives
// (a job became due: Queue.WakeOnDue). claim returns up to n jobs; a claim
// that fails is given to failed (while ctx lives) and tried again after a
// backoff of at most poll: the wake-up it answered is spent, and a worker
// whose poll is long (the legal-hold mirror's is a minute) would otherwise
// leave its due jobs until then. run runs one job. Work returns once the
// jobs it runs have ended.
func Work[T any](ctx context.Context, concurrency int, poll time.Duration, wake <-chan struct{},
	claim func(ctx context.Context, n int) ([]T, error), failed func(error), run func(ctx context.Context, job T),
) {
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	ended := make(chan struct{}, concurrency) // one per job that ended; never full
	var running sync.WaitGroup
	defer running.Wait()
	busy := 0
	failures := 0
	var retry <-chan time.Time // after a failed claim
	for {
		if free := concurrency - busy; free > 0 && ctx.Err() == nil {
			claimed, err := claim(ctx, free)
			retry = nil
			if err == nil {
				failures = 0
			} else if ctx.Err() == nil {
				failed(err)
				failures++
				retry = time.After(backoff.Delay(failures, time.Second, poll))
			}
			busy += len(claimed)
			for _, job := range claimed {
				running.Go(func() {
					run(ctx, job)
					ended <- struct{}{}
				})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ended:
			busy--
		case <-ticker.C:
		case <-wake:
		case <-retry:
		}
		for drained := false; !drained; { // jobs that ended meanwhile: one claim for all
			select {
			case <-ended:
				busy--
			default:
				drained = true
			}
		}
	}
}
