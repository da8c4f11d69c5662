package main

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/oidc/oidctest"
	"github.com/safedelete/uploads/internal/signin"
)

// benchAudience is the service's AUTH_AUDIENCE in the bearer scenarios.
const benchAudience = "https://uploads.bench.invalid/api"

// tokenScope is the scope claim of the callers' tokens: what a frontend's
// token would carry, the delete's among them.
const tokenScope = "openid uploads:read uploads:write uploads:delete"

// identities are what the service side needs to give its callers tokens.
type identities struct {
	tokens *issuer
	client *ent.Client
}

// issuer is the in-process OpenID Connect issuer of the bearer scenarios
// (internal/oidc/oidctest, on loopback http), whose tokens the service
// accepts as AUTH_ISSUER.
type issuer struct {
	iss  *oidctest.Issuer
	keys map[string]oidctest.Key // by algorithm
}

// tokenAlgorithms are the algorithms the issuer signs with, one key each.
var tokenAlgorithms = []string{"RS256", "ES256"}

// startIssuer runs the issuer when a chosen scenario sends tokens, and
// returns nil otherwise: the service is then started without AUTH_ISSUER,
// as before.
func startIssuer(chosen []scenario, cleanups *[]func()) (*issuer, error) {
	needed := false
	for _, sc := range chosen {
		needed = needed || sc.service.tokenAlg() != "" || sc.baseline.tokenAlg() != ""
	}
	if !needed {
		return nil, nil
	}
	i := &issuer{keys: map[string]oidctest.Key{}}
	var published []oidctest.Key
	for _, alg := range tokenAlgorithms {
		key, err := oidctest.GenerateKey(alg)
		if err != nil {
			return nil, err
		}
		i.keys[alg] = key
		published = append(published, key)
	}
	i.iss = oidctest.Serve(published...)
	*cleanups = append(*cleanups, i.iss.Close)
	return i, nil
}

// issue gives each user an identity of the issuer (signin.Link, as an
// operator's link does) and a token of it per algorithm, valid for a day.
func (i *issuer) issue(ctx context.Context, client *ent.Client, users []user) error {
	err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		for _, u := range users {
			if _, _, err := signin.Link(ctx, tx, u.id, i.iss.URL, subject(u)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("link identities: %w", err)
	}
	for n := range users {
		users[n].tokens = map[string]string{}
		for alg := range i.keys {
			token, err := i.sign(users[n], alg, "")
			if err != nil {
				return err
			}
			users[n].tokens[alg] = token
		}
	}
	return nil
}

// signEach gives every upload of a pool a token of its owner's, signed
// with alg, that no other request carries (its jti is the upload's id).
func (i *issuer) signEach(uploads []seededUpload, alg string) error {
	for n := range uploads {
		token, err := i.sign(uploads[n].owner, alg, uploads[n].id)
		if err != nil {
			return err
		}
		uploads[n].token = token
	}
	return nil
}

// sign is a token of u's identity, valid for a day, with jti when given.
func (i *issuer) sign(u user, alg, jti string) (string, error) {
	claims := oidctest.Claims{
		"sub": subject(u), "aud": benchAudience, "scope": tokenScope,
		"exp": time.Now().Add(24 * time.Hour).Unix(),
	}
	if jti != "" {
		claims["jti"] = jti
	}
	return i.iss.Sign(i.keys[alg], claims)
}

// subject is the user's identity at the issuer.
func subject(u user) string { return "bench|" + u.id }
