package oidc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/oidc"
	"github.com/safedelete/uploads/internal/oidc/oidctest"
)

// newVerifier checks iss's tokens, fetching its keys again every refresh.
func newVerifier(t *testing.T, iss *oidctest.Issuer, refresh time.Duration) *oidc.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return oidc.New(ctx, oidc.Options{Issuer: iss.URL, Audience: audience, RefreshInterval: refresh})
}

// accepted verifies token twice (the second time from what the first
// remembered) and fails the test unless both accept it.
func accepted(t *testing.T, v *oidc.Verifier, token string) {
	t.Helper()
	for range 2 {
		if _, err := v.Verify(context.Background(), token); err != nil {
			t.Fatalf("a valid token refused: %v", err)
		}
	}
}

// TestRememberedTokenExpires: a token accepted before it expires is refused
// once it has, although its signature was checked before.
func TestRememberedTokenExpires(t *testing.T) {
	t.Parallel()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	v := newVerifier(t, iss, 0)
	// exp is in whole seconds: now+1s truncated could leave only a few
	// milliseconds, and on a loaded machine the token had expired before
	// its first check (CI, once). now+2s truncated leaves at least a second.
	exp := time.Now().Add(2 * time.Second).Unix()
	token := iss.Token(key, oidctest.Claims{"sub": "alice", "aud": audience, "exp": exp})
	accepted(t, v, token)
	time.Sleep(time.Until(time.Unix(exp, 0)) + 50*time.Millisecond)
	if _, err := v.Verify(context.Background(), token); !errors.Is(err, oidc.ErrRefused) {
		t.Fatalf("an expired token: %v, want refused", err)
	}
}

// TestRememberedTokenAfterRotation: once the issuer stops publishing the
// key that signed an accepted token, or publishes other key material under
// its kid, the token is refused, and tokens of the new key are accepted.
func TestRememberedTokenAfterRotation(t *testing.T) {
	t.Parallel()
	cases := map[string]func(old oidctest.Key) oidctest.Key{
		"key withdrawn": func(oidctest.Key) oidctest.Key { return oidctest.NewKey(t, "RS256") },
		"other key under its kid": func(old oidctest.Key) oidctest.Key {
			k := oidctest.NewKey(t, "RS256")
			k.ID = old.ID
			return k
		},
	}
	for name, rotate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			old := oidctest.NewKey(t, "RS256")
			iss := oidctest.Start(t, old)
			v := newVerifier(t, iss, 100*time.Millisecond)
			oldToken := iss.Token(old, oidctest.Claims{"sub": "alice", "aud": audience})
			accepted(t, v, oldToken)

			next := rotate(old)
			iss.Publish(next)
			newToken := iss.Token(next, oidctest.Claims{"sub": "alice", "aud": audience})
			deadline := time.Now().Add(5 * time.Second)
			for _, err := v.Verify(context.Background(), newToken); err != nil; _, err = v.Verify(context.Background(), newToken) {
				if time.Now().After(deadline) {
					t.Fatalf("the new key's token is still refused: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := v.Verify(context.Background(), oldToken); !errors.Is(err, oidc.ErrRefused) {
				t.Fatalf("a token of a key no longer published: %v, want refused", err)
			}
		})
	}
}
