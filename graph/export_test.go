package graph

import "context"

// SetAfterRead makes every DeleteOwned of r call f between its read and its
// transaction.
func SetAfterRead(r *Resolver, f func(ctx context.Context)) { r.afterRead = f }
