package tracing

import (
	"context"

	"github.com/safedelete/uploads/ent"
)

// TraceparentField is the column of queued work that holds the traceparent
// of the request that queued it (ent/schema/traceparent.go).
const TraceparentField = "traceparent"

// StampQueued is the hook, for the Ent client of a table of queued work,
// that stores in each row it creates the traceparent of the span creating
// it, so that the worker taking the row joins that trace (Tracer.Resume).
// Registered only while tracing is on: off, nothing is stored.
func StampQueued() ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			if m.Op().Is(ent.OpCreate) {
				// Ent has set the default, "", before hooks run.
				if v, _ := m.Field(TraceparentField); v == nil || v == "" {
					if traceparent := Traceparent(ctx); traceparent != "" {
						if err := m.SetField(TraceparentField, traceparent); err != nil {
							return nil, err
						}
					}
				}
			}
			return next.Mutate(ctx, m)
		})
	}
}
