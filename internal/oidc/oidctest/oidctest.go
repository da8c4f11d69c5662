// Package oidctest is an OpenID Connect issuer for tests, in process: it
// serves a discovery document and a JWK Set, and signs access tokens. Keys
// are generated with crypto/*, published with jwkset and tokens signed with
// golang-jwt, the libraries the service checks them with; CI also proves
// the service against a real issuer (internal/e2e/oidc).
package oidctest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key of the issuer.
type Key struct {
	ID      string
	Method  jwt.SigningMethod
	Private crypto.Signer
}

// NewKey makes a key for alg: RS256, ES256 or EdDSA.
func NewKey(t testing.TB, alg string) Key {
	t.Helper()
	key, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// GenerateKey is NewKey outside a test (the benchmark command).
func GenerateKey(alg string) (Key, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("oidctest: no key for %s", alg)
	}
	if err != nil {
		return Key{}, err
	}
	return Key{ID: fmt.Sprintf("%s-%d", alg, keyCount.Add(1)), Method: jwt.GetSigningMethod(alg), Private: signer}, nil
}

var keyCount atomic.Int64

// Issuer is a running test issuer.
type Issuer struct {
	URL string
	t   testing.TB // nil outside a test (Serve)
	srv *httptest.Server

	mu        sync.Mutex
	published []Key
	down      bool
	// KeyFetches counts the requests for the JWK Set.
	KeyFetches atomic.Int64
}

// Start runs an issuer publishing keys (the first signs by default),
// stopped when the test ends.
func Start(t testing.TB, keys ...Key) *Issuer {
	t.Helper()
	iss := Serve(keys...)
	iss.t = t
	t.Cleanup(iss.Close)
	return iss
}

// Serve is Start outside a test (the benchmark command): the caller stops
// the issuer with Close, and signs with Sign.
func Serve(keys ...Key) *Issuer {
	iss := &Issuer{published: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if iss.isDown(w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.KeyFetches.Add(1)
		if iss.isDown(w) {
			return
		}
		body, err := iss.jwks(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	iss.srv = httptest.NewServer(mux)
	iss.URL = iss.srv.URL
	return iss
}

// Close stops the issuer.
func (iss *Issuer) Close() { iss.srv.Close() }

func (iss *Issuer) isDown(w http.ResponseWriter) bool {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if iss.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}
	return iss.down
}

func (iss *Issuer) jwks(ctx context.Context) ([]byte, error) {
	iss.mu.Lock()
	keys := append([]Key(nil), iss.published...)
	iss.mu.Unlock()
	set := jwkset.NewMemoryStorage()
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Private.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.ID, ALG: jwkset.ALG(k.Method.Alg()), USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, err
		}
		if err := set.KeyWrite(ctx, jwk); err != nil {
			return nil, err
		}
	}
	return set.JSONPublic(ctx)
}

// Publish replaces the published keys (a rotation).
func (iss *Issuer) Publish(keys ...Key) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.published = keys
}

// SetDown makes the issuer answer 503 to everything (or work again).
func (iss *Issuer) SetDown(down bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.down = down
}

// Claims are a token's claims; Token fills iss, aud, iat and exp when
// they are not set.
type Claims map[string]any

// Token signs claims with key, naming it in the header's kid; it fails
// the test if that fails.
func (iss *Issuer) Token(key Key, claims Claims) string {
	iss.t.Helper()
	s, err := iss.Sign(key, claims)
	if err != nil {
		iss.t.Fatal(err)
	}
	return s
}

// Sign is Token outside a test.
func (iss *Issuer) Sign(key Key, claims Claims) (string, error) {
	c := jwt.MapClaims{"iss": iss.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	tok := jwt.NewWithClaims(key.Method, c)
	tok.Header["kid"] = key.ID
	return tok.SignedString(key.Private)
}
