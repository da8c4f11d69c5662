package oidc

import (
	"context"
	"testing"

	"github.com/safedelete/uploads/internal/oidc/oidctest"
	"github.com/safedelete/uploads/internal/scope"
)

const benchAudience = "https://uploads.example/api"

// BenchmarkVerify is the raw cost of checking one valid access token with
// the issuer's keys cached, per signature algorithm: first, the full check
// of a token not seen before (parse, signature, claims); again, the same
// token on a later request (its claims and key checked, its signature
// remembered). Every request with a token pays one of them before its
// identity is looked up.
//
//	go test -run '^$' -bench Verify -benchmem ./internal/oidc
func BenchmarkVerify(b *testing.B) {
	keys := map[string]oidctest.Key{}
	var published []oidctest.Key
	for _, alg := range []string{"RS256", "ES256"} {
		keys[alg] = oidctest.NewKey(b, alg)
		published = append(published, keys[alg])
	}
	iss := oidctest.Start(b, published...)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	v := New(ctx, Options{Issuer: iss.URL, Audience: benchAudience, DefaultScopes: scope.DefaultForTokens})
	for _, alg := range []string{"RS256", "ES256"} {
		token := iss.Token(keys[alg], oidctest.Claims{"sub": "alice", "aud": benchAudience, "scope": "uploads:delete"})
		b.Run(alg+"/first", func(b *testing.B) {
			b.ReportAllocs()
			keyOf := (*v.keys.Load()).KeyfuncCtx(ctx)
			for b.Loop() {
				if _, _, err := v.check(token, keyOf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/again", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
