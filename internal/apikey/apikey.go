// Package apikey issues, checks and revokes API keys. A key is
// "ukey_" + 64 lowercase hex digits (256 bits from crypto/rand); only its
// SHA-256 digest and a short non-secret prefix are stored.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
)

const (
	// TypePrefix starts every secret, so that leaked keys are easy to
	// recognise (and to scan for).
	TypePrefix   = "ukey_"
	secretBytes  = 32
	secretLen    = len(TypePrefix) + 2*secretBytes
	displayChars = len(TypePrefix) + 8

	// lastUsedGranularity bounds the writes that recording last use costs:
	// at most one per key per interval.
	lastUsedGranularity = time.Minute
)

// ErrInvalid is returned for a key that is malformed, unknown or revoked.
var ErrInvalid = errors.New("apikey: invalid key")

// ErrNotFound is returned when revoking a key id that does not exist.
var ErrNotFound = errors.New("apikey: no such key")

// Generate returns a new secret, its display prefix and its digest.
func Generate() (secret, prefix, digest string) {
	var b [secretBytes]byte
	_, _ = rand.Read(b[:]) // never fails: it crashes the program instead
	secret = TypePrefix + hex.EncodeToString(b[:])
	return secret, secret[:displayChars], Digest(secret)
}

// Digest is the stored form of a secret: lowercase hex SHA-256. A fast hash
// is right here: the secret has 256 bits of entropy, so there is nothing to
// brute-force, and it is computed on every request.
func Digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether secret has the shape of a key this service issues.
func WellFormed(secret string) bool {
	if len(secret) != secretLen || !strings.HasPrefix(secret, TypePrefix) {
		return false
	}
	_, err := hex.DecodeString(secret[len(TypePrefix):])
	return err == nil && strings.ToLower(secret) == secret
}

// Create issues a key for userID and returns the record and the secret, which
// is never available again.
func Create(ctx context.Context, client *ent.Client, userID string) (*ent.APIKey, string, error) {
	secret, prefix, digest := Generate()
	key, err := client.APIKey.Create().
		SetOwnerID(userID).
		SetPrefix(prefix).
		SetDigest(digest).
		Save(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("create api key: %w", err)
	}
	return key, secret, nil
}

// Revoke marks the key revoked; it stops working at once.
func Revoke(ctx context.Context, client *ent.Client, keyID string) (*ent.APIKey, error) {
	key, err := client.APIKey.UpdateOneID(keyID).
		SetRevokedAt(time.Now()).
		Save(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	return key, nil
}

// Authenticate returns the live key whose secret is given, or ErrInvalid.
// Other errors mean the database failed.
func Authenticate(ctx context.Context, client *ent.Client, secret string) (*ent.APIKey, error) {
	if !WellFormed(secret) {
		return nil, ErrInvalid
	}
	key, err := client.APIKey.Query().
		Where(apikey.Digest(Digest(secret)), apikey.RevokedAtIsNil()).
		Select(apikey.FieldID, apikey.FieldOwnerID, apikey.FieldLastUsedAt). // on every request: only what it needs
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	now := time.Now()
	if key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) >= lastUsedGranularity {
		// Best effort: failing to record the use must not fail the request.
		_ = client.APIKey.UpdateOneID(key.ID).SetLastUsedAt(now).Exec(ctx)
	}
	return key, nil
}
