package oidc_test

import (
	"context"
	"testing"

	"github.com/safedelete/uploads/internal/oidc"
	"github.com/safedelete/uploads/internal/oidc/oidctest"
	"github.com/safedelete/uploads/internal/scope"
)

const audience = "https://uploads.example/api"

// BenchmarkVerify is the raw cost of checking one valid access token
// (parse, signature, claims), per signature algorithm, with the issuer's
// keys already cached: what every request with a token pays before its
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
	v := oidc.New(ctx, oidc.Options{Issuer: iss.URL, Audience: audience, DefaultScopes: scope.DefaultForTokens})
	for _, alg := range []string{"RS256", "ES256"} {
		token := iss.Token(keys[alg], oidctest.Claims{"sub": "alice", "aud": audience, "scope": "uploads:delete"})
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
