package webhook

import (
	"context"
	"sync"
)

// gate bounds the attempts a sender sends to one endpoint at once. An
// owner may have more claimed for an endpoint that answers than it may
// send to it at once (see ownerClaims); the others wait here for a turn.
type gate struct {
	mu      sync.Mutex
	sending map[string]int           // endpoint id -> attempts being sent
	freed   map[string]chan struct{} // closed when one of them ends, for those waiting
}

func newGate() *gate {
	return &gate{sending: map[string]int{}, freed: map[string]chan struct{}{}}
}

// enter waits until fewer than limit attempts are being sent to the
// endpoint, and counts one more. It reports whether it had to wait, and
// ctx's error if ctx ended first (then it counted none).
func (g *gate) enter(ctx context.Context, endpointID string, limit int) (waited bool, err error) {
	for {
		g.mu.Lock()
		if g.sending[endpointID] < limit {
			g.sending[endpointID]++
			g.mu.Unlock()
			return waited, nil
		}
		freed := g.freed[endpointID]
		if freed == nil {
			freed = make(chan struct{})
			g.freed[endpointID] = freed
		}
		g.mu.Unlock()
		waited = true
		select {
		case <-freed:
		case <-ctx.Done():
			return waited, ctx.Err()
		}
	}
}

// leave ends an attempt that entered, and lets those waiting try again.
func (g *gate) leave(endpointID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	decrement(g.sending, endpointID)
	if freed := g.freed[endpointID]; freed != nil {
		close(freed)
		delete(g.freed, endpointID)
	}
}
