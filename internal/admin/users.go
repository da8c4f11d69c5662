package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/identity"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/signin"
)

// NewUser is a user to create: one who signs in at Issuer as Subject, or,
// without a subject, one who is given a first API key.
type NewUser struct {
	Email           string // optional with Subject
	Issuer, Subject string
	Key             apikey.Grant // the first key's, without Subject
}

// Created is what CreateUserWith made: the user, and their identity or
// their first key with its secret, which is not retrievable later.
type Created struct {
	User     *ent.User
	Identity *ent.Identity
	Key      *ent.APIKey
	Secret   string
}

// CreateUserWith creates n's user in one transaction with their identity
// (when n has a subject) or their first API key (when it has none).
func CreateUserWith(ctx context.Context, client *ent.Client, n NewUser) (Created, error) {
	var created Created
	var email string
	if n.Email != "" || n.Subject == "" {
		var ok bool
		if email, ok = signin.Address(strings.TrimSpace(n.Email)); !ok {
			return created, fmt.Errorf("invalid email address %q", n.Email)
		}
	}
	err := database.WithTx(ctx, client, func(tx *ent.Tx) (err error) {
		create := tx.User.Create()
		if email != "" {
			create.SetEmail(email)
		}
		created.User, err = create.Save(ctx)
		if ent.IsConstraintError(err) {
			return fmt.Errorf("a user with email %q already exists", email)
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if n.Subject != "" {
			created.Identity, _, err = signin.Link(ctx, tx, created.User.ID, n.Issuer, n.Subject)
			return err
		}
		created.Key, created.Secret, err = apikey.CreateWith(ctx, tx.Client(), created.User.ID, n.Key)
		return err
	})
	if errors.Is(err, signin.ErrTaken) {
		return Created{}, takenError(ctx, client, n.Issuer, n.Subject, "no user was created")
	}
	if err != nil {
		return Created{}, err
	}
	return created, nil
}

// takenError says whose the identity (issuer, subject) is.
func takenError(ctx context.Context, client *ent.Client, issuer, subject, outcome string) error {
	owner := "another user"
	if id, err := client.Identity.Query().Where(identity.Issuer(issuer), identity.Subject(subject)).Only(ctx); err == nil {
		owner = "user " + id.UserID
	}
	return fmt.Errorf("subject %q at %s already belongs to %s; %s", subject, issuer, owner, outcome)
}

func createUser(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	created, err := CreateUserWith(ctx, client, NewUser{Email: o.Email, Issuer: o.Issuer, Subject: o.Subject, Key: o.Key})
	if err != nil {
		return err
	}
	u := created.User
	if id := created.Identity; id != nil {
		return report(out, o.JSON, map[string]any{
			"user_id": u.ID, "email": u.Email, "issuer": id.Issuer, "subject": id.Subject, "linked_at": id.CreatedAt.UTC(),
		}, "Created user %s (%s), linked to subject %q at %s.\nNo API key was made: they sign in at the issuer.\n",
			u.ID, emailText(u.Email), id.Subject, id.Issuer)
	}
	fields := keyFields(created.Key)
	fields["user_id"], fields["email"], fields["api_key"] = u.ID, u.Email, created.Secret
	return report(out, o.JSON, fields, "Created user %s (%s).\nAPI key %s: %s\n%sStore the key now: it is not shown again.\n",
		u.ID, emailText(u.Email), created.Key.ID, created.Secret, keyText(created.Key))
}

// LinkUser gives the user userID the identity (issuer, subject) and
// reports whether it was theirs already.
func LinkUser(ctx context.Context, client *ent.Client, userID, issuer, subject string) (linked *ent.Identity, already bool, err error) {
	err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
		exists, err := tx.User.Query().Where(user.ID(userID)).Exist(ctx)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("no user with id %q", userID)
		}
		linked, already, err = signin.Link(ctx, tx, userID, issuer, subject)
		return err
	})
	if errors.Is(err, signin.ErrTaken) {
		return nil, false, takenError(ctx, client, issuer, subject, "nothing was linked")
	}
	return linked, already, err
}

func linkUser(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	linked, already, err := LinkUser(ctx, client, o.ID, o.Issuer, o.Subject)
	if err != nil {
		return err
	}
	format := "Linked subject %q at %s to user %s: they can sign in now.\n"
	if already {
		format = "Subject %q at %s was already linked to user %s; nothing changed.\n"
	}
	return report(out, o.JSON, map[string]any{
		"user_id": linked.UserID, "issuer": linked.Issuer, "subject": linked.Subject,
		"linked_at": linked.CreatedAt.UTC(), "already_linked": already,
	}, format, linked.Subject, linked.Issuer, linked.UserID)
}

// IdentitySummary is one identity a user signs in with.
type IdentitySummary struct {
	Issuer   string    `json:"issuer"`
	Subject  string    `json:"subject"`
	LinkedAt time.Time `json:"linked_at"`
}

func identitiesOf(ctx context.Context, client *ent.Client, userID string) ([]IdentitySummary, error) {
	ids, err := client.Identity.Query().Where(identity.UserID(userID)).
		Order(ent.Asc(identity.FieldCreatedAt), ent.Asc(identity.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	summaries := make([]IdentitySummary, 0, len(ids))
	for _, id := range ids {
		summaries = append(summaries, IdentitySummary{Issuer: id.Issuer, Subject: id.Subject, LinkedAt: id.CreatedAt.UTC()})
	}
	return summaries, nil
}

// writeIdentities prints identities as a table under a heading.
func writeIdentities(out io.Writer, identities []IdentitySummary) error {
	fmt.Fprintln(out, "Sign-in identities:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tSUBJECT\tLINKED")
	for _, id := range identities {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", id.Issuer, id.Subject, formatTime(id.LinkedAt))
	}
	return tw.Flush()
}
