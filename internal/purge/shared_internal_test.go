package purge

import (
	"context"
	"testing"
	"time"
)

// TestSharedRequestDeadline: a shared request runs in the trace of the
// removal that has waited longest, but until the latest deadline of those
// it carries, so that a removal that joined late is not cut short by the
// time others spent waiting; and a removal without a deadline sets none.
func TestSharedRequestDeadline(t *testing.T) {
	type traceKey struct{}
	now := time.Now()
	withDeadline := func(ctx context.Context, d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(ctx, now.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	oldest := withDeadline(context.WithValue(context.Background(), traceKey{}, "oldest"), time.Second)
	removals := []*removal{{ctx: oldest}, {ctx: withDeadline(context.Background(), 3*time.Second)}, {ctx: withDeadline(context.Background(), 2*time.Second)}}

	ctx, cancel := latestDeadline(removals)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(now.Add(3*time.Second)) {
		t.Errorf("deadline %v (set: %v), want the latest, %v", d, ok, now.Add(3*time.Second))
	}
	if v := ctx.Value(traceKey{}); v != "oldest" {
		t.Errorf("values of %v, want those of the removal that waited longest", v)
	}

	ctx, cancel = latestDeadline(append(removals, &removal{ctx: context.Background()}))
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		t.Errorf("deadline %v with a removal that has none, want none", d)
	}
}
