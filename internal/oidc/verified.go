package oidc

import (
	"crypto"
	"crypto/sha256"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// maxVerified bounds the tokens whose signature is remembered: one entry
// is a digest, the claims and a reference to a key, a few hundred bytes.
const maxVerified = 10_000

// verified remembers the tokens whose signature checked, by the SHA-256 of
// the token (never the token itself), so that the next request with the
// same token skips the signature: on RS256 and ES256 the larger part of a
// check. Only the signature is skipped. A remembered token is accepted only
// when the key its header names today is the very key that checked it and
// its claims pass the same validation as a new token now (exp, nbf, iat
// with the skew; iss and aud): bytes that verified once under a key verify
// again under it, so every answer, and every refusal, is the one a full
// check would give. Anything else takes the full check. The identity's
// user is not remembered here: signin looks it up on every request.
type verified struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*verifiedToken
}

// verifiedToken is what a full check of a token found.
type verifiedToken struct {
	header map[string]any
	method jwt.SigningMethod
	key    any // the key that checked the signature
	claims tokenClaims
	result Claims
}

func (c *verified) get(digest [sha256.Size]byte) *verifiedToken {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[digest]
}

func (c *verified) put(digest [sha256.Size]byte, t *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]*verifiedToken{}
	}
	if len(c.entries) >= maxVerified {
		for d := range c.entries { // one arbitrary entry makes room
			delete(c.entries, d)
			break
		}
	}
	c.entries[digest] = t
}

func (c *verified) forget(digest [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, digest)
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b any) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
