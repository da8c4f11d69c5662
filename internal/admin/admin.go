// Package admin implements the management commands: creating, listing,
// showing and deleting users, and issuing, listing and revoking API keys.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/apikey"
)

// Options are the commands' flags.
type Options struct {
	Email   string
	UserID  string
	ID      string
	Subject string // users create, users link: the subject (sub claim) at Issuer
	Issuer  string // AUTH_ISSUER: the issuer Subject signs in at
	JSON    bool
	Limit   int  // audit: most events shown, 0 for all; jobs list: most jobs shown
	Detach  bool // users delete: print the job's id and return
	// ExceptHeld (users delete) erases all but what a hold keeps, and
	// keeps the user; without it a user with a hold is refused.
	ExceptHeld bool
	UploadID   string   // holds place: the upload to hold
	Reason     string   // holds place: why
	Until      string   // holds place: a date or an RFC 3339 time; empty: until released
	Statuses   []string // jobs list: only jobs in these statuses

	// Key is what a new API key may do and until when (keys create, users
	// create): zero scopes mean every scope, a zero time never.
	Key apikey.Grant
}

// Command is a management command that needs only the database.
type Command struct {
	check func(Options) error // nil: every combination of flags will do
	run   func(context.Context, *ent.Client, Options, io.Writer) error
}

// The commands that need only the database, each with the checks of its
// flags.
var (
	UsersCreate = Command{checkUsersCreate, createUser}
	UsersList   = Command{nil, listUsers}
	UsersShow   = Command{checkUsersShow, showUser}
	UsersLink   = Command{checkUsersLink, linkUser}
	KeysCreate  = Command{needsUser("keys create"), createKey}
	KeysList    = Command{needsUser("keys list"), listKeys}
	KeysRevoke  = Command{needsID("keys revoke"), revokeKey}
	Audit       = Command{needsUser("audit"), showAudit}
	AuditVerify = Command{nil, verifyAudit}
)

// Check says what is wrong with o's flags, if anything; it runs before
// the database is opened (and its file made).
func (c Command) Check(o Options) error {
	if c.check == nil {
		return nil
	}
	return c.check(o)
}

// Run checks o, runs the command and prints its result to out.
func (c Command) Run(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	if err := c.Check(o); err != nil {
		return err
	}
	return c.run(ctx, client, o, out)
}

func checkUsersCreate(o Options) error {
	if o.Email == "" && o.Subject == "" {
		return errors.New("users create needs --email (a user with an API key) or --subject (a user who signs in)")
	}
	if err := checkSubject("users create", o); err != nil {
		return err
	}
	if o.Subject != "" && o.Key != (apikey.Grant{}) {
		return errors.New("users create --subject makes no API key (the user signs in), so --scope and --expires do not apply; " +
			"issue a key afterwards with: uploads keys create --user USER_ID")
	}
	return nil
}

func checkUsersLink(o Options) error {
	if o.ID == "" {
		return errors.New("users link needs --id")
	}
	if o.Subject == "" {
		return errors.New("users link needs --subject")
	}
	return checkSubject("users link", o)
}

// checkSubject checks --subject, when given, of command (users create or
// users link).
func checkSubject(command string, o Options) error {
	switch {
	case o.Subject != "" && o.Issuer == "":
		return fmt.Errorf("%s --subject needs AUTH_ISSUER (and AUTH_AUDIENCE) set: the issuer whose subject it is", command)
	case strings.TrimSpace(o.Subject) != o.Subject:
		// A token's sub never matches a subject typed with a stray space.
		return fmt.Errorf("%s: --subject %q has white space around it", command, o.Subject)
	}
	return nil
}

func checkUsersShow(o Options) error {
	if (o.ID == "") == (o.Email == "") {
		return errors.New("users show needs --id or --email (one of them)")
	}
	return nil
}

func needsUser(command string) func(Options) error {
	return func(o Options) error {
		if o.UserID == "" {
			return fmt.Errorf("%s needs --user", command)
		}
		return nil
	}
}

func needsID(command string) func(Options) error {
	return func(o Options) error {
		if o.ID == "" {
			return fmt.Errorf("%s needs --id", command)
		}
		return nil
	}
}

// CreateUser creates a user with one API key (every scope, no expiry) and
// returns both; the secret is not retrievable later.
func CreateUser(ctx context.Context, client *ent.Client, email string) (*ent.User, *ent.APIKey, string, error) {
	created, err := CreateUserWith(ctx, client, NewUser{Email: email})
	if err != nil {
		return nil, nil, "", err
	}
	return created.User, created.Key, created.Secret, nil
}

func revokeKey(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	key, err := apikey.Revoke(ctx, client, o.ID)
	if errors.Is(err, apikey.ErrNotFound) {
		return fmt.Errorf("no API key with id %q", o.ID)
	}
	if err != nil {
		return err
	}
	revokedAt := key.RevokedAt.UTC().Format(time.RFC3339)
	return report(out, o.JSON, map[string]any{
		"api_key_id": key.ID, "user_id": key.OwnerID, "revoked_at": revokedAt,
	}, "Revoked API key %s of user %s at %s.\n", key.ID, key.OwnerID, revokedAt)
}

func report(out io.Writer, asJSON bool, fields map[string]any, format string, args ...any) error {
	if asJSON {
		return json.NewEncoder(out).Encode(fields)
	}
	_, err := fmt.Fprintf(out, format, args...)
	return err
}
