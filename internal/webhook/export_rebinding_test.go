package webhook

import (
	"net"
	"testing"
)

// UseResolver makes the senders made from now until t ends look names up
// with r.
func UseResolver(t testing.TB, r *net.Resolver) {
	old := resolver
	resolver = r
	t.Cleanup(func() { resolver = old })
}
