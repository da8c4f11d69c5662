package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/queue"
)

// TestWorkRetriesAFailedClaim: a claim that fails (the database briefly
// unavailable) is made again within seconds, not at the next poll or
// wake-up: the due job it missed runs, though the poll is an hour away
// and nothing wakes the worker.
func TestWorkRetriesAFailedClaim(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var claims atomic.Int64
	ran := make(chan int, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		queue.Work(ctx, 1, time.Hour, nil,
			func(context.Context, int) ([]int, error) {
				switch claims.Add(1) {
				case 1:
					return nil, errors.New("injected: the database is unavailable")
				case 2:
					return []int{7}, nil
				}
				return nil, nil
			},
			func(error) {},
			func(_ context.Context, job int) { ran <- job })
	}()
	defer func() { cancel(); <-stopped }()
	select {
	case job := <-ran:
		if job != 7 {
			t.Fatalf("ran job %d, want 7", job)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the due job did not run within 10s of a failed claim (%d claims)", claims.Load())
	}
}
