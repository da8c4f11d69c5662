package webhook

import (
	"net"
	"testing"
)

// ConfineDials makes the senders made from now until t ends run refuse on
// each address the SSRF guard allowed, before connecting to it.
func ConfineDials(t testing.TB, refuse func(address string) error) {
	old := confine
	confine = refuse
	t.Cleanup(func() { confine = old })
}

// UseResolver makes the senders made from now until t ends look names up
// with r.
func UseResolver(t testing.TB, r *net.Resolver) {
	old := resolver
	resolver = r
	t.Cleanup(func() { resolver = old })
}
