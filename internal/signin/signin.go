// Package signin maps an OpenID Connect identity (issuer, subject) to the
// user it belongs to: on every request carrying an access token, when an
// operator links a subject to a user, and when a user is deleted.
package signin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/identity"
	"github.com/safedelete/uploads/ent/retiredidentity"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/database"
)

// ErrUnknown is returned for an identity that belongs to no user and may
// not make one.
var ErrUnknown = errors.New("signin: unknown identity")

// ErrTaken is returned when linking an identity that already belongs to
// another user.
var ErrTaken = errors.New("signin: the identity belongs to another user")

// Digest is what is kept of a deleted user's identity: lowercase hex
// SHA-256 of issuer, a NUL byte and subject.
func Digest(issuer, subject string) string {
	sum := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return hex.EncodeToString(sum[:])
}

// Resolver finds the user of an identity. Its lookup runs on every request
// with a token, so it is built once and prepared, like the API key's.
type Resolver struct {
	client *ent.Client
	create bool
	lookup *database.Statement
}

// NewResolver returns a Resolver; with create, an identity that belongs to
// no user (and was never a deleted user's) makes its user.
func NewResolver(client *ent.Client, create bool) *Resolver {
	query, _ := sql.Dialect(dialect.Postgres).
		Select(identity.FieldUserID).
		From(sql.Table(identity.Table)).
		Where(sql.And(sql.EQ(identity.FieldIssuer, ""), sql.EQ(identity.FieldSubject, ""))).
		Query()
	return &Resolver{client: client, create: create, lookup: database.Prepare(client, query)}
}

// UserOf returns the id of the user whose identity (issuer, subject) is,
// making the user when the Resolver may (with email as its address when it
// is a valid address no other user has). ErrUnknown means the identity has
// no user; other errors mean the database failed.
func (r *Resolver) UserOf(ctx context.Context, issuer, subject, email string) (string, error) {
	userID, err := r.find(ctx, issuer, subject)
	if err != nil || userID != "" || !r.create {
		if err == nil && userID == "" {
			err = ErrUnknown
		}
		return userID, err
	}
	retired, err := r.client.RetiredIdentity.Query().Where(retiredidentity.ID(Digest(issuer, subject))).Exist(ctx)
	if err != nil {
		return "", fmt.Errorf("look up identity: %w", err)
	}
	if retired {
		return "", ErrUnknown
	}
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
		create := tx.User.Create()
		if addr, ok := Address(email); ok {
			taken, err := tx.User.Query().Where(user.Email(addr)).Exist(ctx)
			if err != nil {
				return err
			}
			if !taken { // never joined to someone else's account by an address
				create.SetEmail(addr)
			}
		}
		u, err := create.Save(ctx)
		if err != nil {
			return err
		}
		userID = u.ID
		return tx.Identity.Create().SetUserID(u.ID).SetIssuer(issuer).SetSubject(subject).Exec(ctx)
	})
	if ent.IsConstraintError(err) {
		// Another first request of the same identity won: its user is the one.
		if userID, err = r.find(ctx, issuer, subject); err == nil && userID == "" {
			err = ErrUnknown
		}
		return userID, err
	}
	if err != nil {
		return "", fmt.Errorf("create user of identity: %w", err)
	}
	return userID, nil
}

// find returns the user of an identity, or "" when it has none.
func (r *Resolver) find(ctx context.Context, issuer, subject string) (string, error) {
	rows, err := r.lookup.QueryContext(ctx, issuer, subject)
	if err != nil {
		return "", fmt.Errorf("look up identity: %w", err)
	}
	defer rows.Close()
	var userID string
	if rows.Next() {
		if err := rows.Scan(&userID); err != nil {
			return "", fmt.Errorf("look up identity: %w", err)
		}
	}
	return userID, rows.Err()
}

// Address is email as a user's address is stored: a plain address (no
// display name, no comment), lowercased; ok is false for anything else.
func Address(email string) (addr string, ok bool) {
	parsed, err := mail.ParseAddress(email)
	if err != nil || parsed.Address != email {
		return "", false
	}
	return strings.ToLower(parsed.Address), true
}

// Link gives userID the identity (issuer, subject), in tx, and reports
// whether it was theirs already (then nothing changes); ErrTaken means it
// is another user's. A deleted user's identity may be linked again.
func Link(ctx context.Context, tx *ent.Tx, userID, issuer, subject string) (linked *ent.Identity, already bool, err error) {
	if issuer == "" || strings.TrimSpace(subject) == "" {
		return nil, false, fmt.Errorf("link identity: issuer and subject are required")
	}
	existing, err := tx.Identity.Query().Where(identity.Issuer(issuer), identity.Subject(subject)).Only(ctx)
	switch {
	case err == nil && existing.UserID == userID:
		return existing, true, nil
	case err == nil:
		return nil, false, fmt.Errorf("%w (%s)", ErrTaken, existing.UserID)
	case !ent.IsNotFound(err):
		return nil, false, fmt.Errorf("link identity: %w", err)
	}
	if _, err := tx.RetiredIdentity.Delete().Where(retiredidentity.ID(Digest(issuer, subject))).Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("link identity: %w", err)
	}
	created, err := tx.Identity.Create().SetUserID(userID).SetIssuer(issuer).SetSubject(subject).Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, false, ErrTaken
	}
	if err != nil {
		return nil, false, fmt.Errorf("link identity: %w", err)
	}
	return created, false, nil
}

// Retire deletes userID's identities in tx and returns how many, keeping
// their digests so that their tokens do not make a new user by themselves.
func Retire(ctx context.Context, tx *ent.Tx, userID string) (int, error) {
	ids, err := tx.Identity.Query().Where(identity.UserID(userID)).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("retire identities: %w", err)
	}
	for _, id := range ids {
		digest := Digest(id.Issuer, id.Subject)
		if _, err := tx.RetiredIdentity.Delete().Where(retiredidentity.ID(digest)).Exec(ctx); err != nil {
			return 0, fmt.Errorf("retire identities: %w", err)
		}
		if err := tx.RetiredIdentity.Create().SetID(digest).Exec(ctx); err != nil {
			return 0, fmt.Errorf("retire identities: %w", err)
		}
	}
	if _, err := tx.Identity.Delete().Where(identity.UserID(userID)).Exec(ctx); err != nil {
		return 0, fmt.Errorf("retire identities: %w", err)
	}
	return len(ids), nil
}
