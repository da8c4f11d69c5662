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
	"sync"
	"time"

	stdsql "database/sql"
	"encoding/json"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/scope"
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
	for _, c := range []byte(secret[len(TypePrefix):]) { // lowercase hex only
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Grant is what a new key may do, and until when.
type Grant struct {
	// Scopes are the key's scopes; zero means every scope, now and later:
	// the key is stored without a list, so scopes added in a later release
	// are the key's too.
	Scopes scope.Set
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time
}

// Create issues a key for userID with every scope and no expiry, and
// returns the record and the secret, which is never available again.
func Create(ctx context.Context, client *ent.Client, userID string) (*ent.APIKey, string, error) {
	return CreateWith(ctx, client, userID, Grant{})
}

// CreateWith issues a key for userID with grant's scopes and expiry, and
// returns the record and the secret, which is never available again.
func CreateWith(ctx context.Context, client *ent.Client, userID string, grant Grant) (*ent.APIKey, string, error) {
	secret, prefix, digest := Generate()
	create := client.APIKey.Create().
		SetOwnerID(userID).
		SetPrefix(prefix).
		SetDigest(digest)
	if grant.Scopes != 0 {
		create.SetScopes(grant.Scopes.Names())
	}
	if !grant.ExpiresAt.IsZero() {
		create.SetExpiresAt(grant.ExpiresAt.UTC())
	}
	key, err := create.Save(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("create api key: %w", err)
	}
	return key, secret, nil
}

// AllScopes reports whether key has every scope, including scopes added
// after it was made: it was made without a list.
func AllScopes(key *ent.APIKey) bool { return len(key.Scopes) == 0 }

// ScopesOf is the set of scopes key has. Names it holds that this release
// does not know (a scope since removed) give nothing.
func ScopesOf(key *ent.APIKey) scope.Set {
	if AllScopes(key) {
		return scope.All
	}
	return scope.FromNames(key.Scopes)
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

// Authenticator checks the API key of every request. Its lookup is the
// hottest query of the service, so it is built once (with Ent's SQL
// builder, from the schema's own names), runs as a prepared statement, and
// reads only the two columns a request needs. The time of last use is
// recorded at most once per key per lastUsedGranularity from each process,
// from what the process remembers, and written off the request's path
// (lastused.go).
type Authenticator struct {
	lookup   *database.Statement
	lastUsed sync.Map // key id -> when this process last recorded its use
	uses     *lastUses
}

// NewAuthenticator returns an Authenticator of the keys in client.
func NewAuthenticator(client *ent.Client) *Authenticator {
	// PostgreSQL's placeholders ($1) and quoting are also SQLite's.
	query, _ := sql.Dialect(dialect.Postgres).
		Select(apikey.FieldID, apikey.FieldOwnerID, apikey.FieldScopes, apikey.FieldExpiresAt).
		From(sql.Table(apikey.Table)).
		Where(sql.And(sql.EQ(apikey.FieldDigest, ""), sql.IsNull(apikey.FieldRevokedAt))).
		Query()
	return &Authenticator{lookup: database.Prepare(client, query), uses: newLastUses(client)}
}

// Authenticate returns the live key whose secret is given (its ID and
// OwnerID), or ErrInvalid. Other errors mean the database failed.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (*ent.APIKey, error) {
	if !WellFormed(secret) {
		return nil, ErrInvalid
	}
	rows, err := a.lookup.QueryContext(ctx, Digest(secret))
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	defer rows.Close()
	if !rows.Next() { // the digest is unique: one row at most
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("look up api key: %w", err)
		}
		return nil, ErrInvalid
	}
	key := &ent.APIKey{}
	var scopes []byte
	var expires stdsql.NullTime
	if err := rows.Scan(&key.ID, &key.OwnerID, &scopes, &expires); err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	if expires.Valid {
		if !time.Now().Before(expires.Time) {
			return nil, ErrInvalid // expired: refused like a revoked key
		}
		key.ExpiresAt = &expires.Time
	}
	if len(scopes) > 0 && string(scopes) != "null" {
		if err := json.Unmarshal(scopes, &key.Scopes); err != nil {
			return nil, fmt.Errorf("look up api key: its scopes: %w", err)
		}
	}
	a.recordUse(key.ID)
	return key, nil
}

// recordUse notes the key's last use, to be written within
// lastUsedWriteEvery, unless this process noted one less than
// lastUsedGranularity ago.
func (a *Authenticator) recordUse(keyID string) {
	now := time.Now()
	if last, ok := a.lastUsed.Load(keyID); ok && now.Sub(last.(time.Time)) < lastUsedGranularity {
		return
	}
	a.lastUsed.Store(keyID, now)
	a.uses.add(keyID, now)
}

// Flush writes the uses noted so far and waits until they are written.
// Shutdown calls it before the database closes.
func (a *Authenticator) Flush() { a.uses.write() }
