package webhook

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// gate bounds the attempts a sender sends to one owner's endpoints at
// once. An owner may have more claimed for endpoints that answer promptly
// than it may send at once (see ownerClaims); the others wait here for a
// turn, first come first served.
type gate struct {
	limit int64
	mu    sync.Mutex
	turns map[string]*turns // owner id -> its semaphore, while anyone holds or waits for it
}

type turns struct {
	sem   *semaphore.Weighted
	users int // attempts holding or waiting for a turn
}

func newGate(limit int) *gate {
	return &gate{limit: int64(limit), turns: map[string]*turns{}}
}

// enter waits until fewer than the gate's limit of the owner's attempts
// are being sent, and counts one more. It reports whether it had to wait,
// and ctx's error if ctx ended first (then it counted none).
func (g *gate) enter(ctx context.Context, ownerID string) (waited bool, err error) {
	t := g.use(ownerID)
	if t.sem.TryAcquire(1) {
		return false, nil
	}
	if err := t.sem.Acquire(ctx, 1); err != nil {
		g.done(ownerID, t)
		return true, err
	}
	return true, nil
}

// leave ends an attempt that entered, and lets the next one waiting go.
func (g *gate) leave(ownerID string) {
	g.mu.Lock()
	t := g.turns[ownerID]
	g.mu.Unlock()
	t.sem.Release(1)
	g.done(ownerID, t)
}

func (g *gate) use(ownerID string) *turns {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.turns[ownerID]
	if t == nil {
		t = &turns{sem: semaphore.NewWeighted(g.limit)}
		g.turns[ownerID] = t
	}
	t.users++
	return t
}

// done forgets the owner's semaphore once nobody holds or waits for it.
func (g *gate) done(ownerID string, t *turns) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.users--; t.users == 0 {
		delete(g.turns, ownerID)
	}
}
