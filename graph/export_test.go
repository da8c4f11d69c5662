package graph

// SetAfterRead makes every DeleteOwned of r call f between its read and its
// transaction.
func SetAfterRead(r *Resolver, f func()) { r.afterRead = f }
