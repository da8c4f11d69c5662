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

// Commands lists the commands that need only the database, as typed on
// the command line.
var Commands = []string{"users create", "users list", "users show", "users link", "keys create", "keys list", "keys revoke", "audit"}

// Options are the commands' flags.
type Options struct {
	Email   string
	UserID  string
	ID      string
	Subject string // users create, users link: the subject (sub claim) at Issuer
	Issuer  string // AUTH_ISSUER: the issuer Subject signs in at
	JSON    bool
	Limit   int // audit: most events shown; 0 for all

	// Key is what a new API key may do and until when (keys create, users
	// create): zero scopes mean every scope, a zero time never.
	Key apikey.Grant
}

// Validate checks that o has the flags command needs, before anything is
// opened.
func Validate(command string, o Options) error {
	missing := func(flag string) error { return fmt.Errorf("%s needs --%s", command, flag) }
	switch {
	case command == "users create" && o.Email == "" && o.Subject == "":
		return errors.New("users create needs --email (a user with an API key) or --subject (a user who signs in)")
	case command == "users link" && o.ID == "":
		return missing("id")
	case command == "users link" && o.Subject == "":
		return missing("subject")
	case (command == "users create" || command == "users link") && o.Subject != "" && o.Issuer == "":
		return fmt.Errorf("%s --subject needs AUTH_ISSUER (and AUTH_AUDIENCE) set: the issuer whose subject it is", command)
	case o.Subject != "" && strings.TrimSpace(o.Subject) != o.Subject:
		// A token's sub never matches a subject typed with a stray space.
		return fmt.Errorf("%s: --subject %q has white space around it", command, o.Subject)
	case command == "users create" && o.Subject != "" && o.Key != (apikey.Grant{}):
		return errors.New("users create --subject makes no API key (the user signs in), so --scope and --expires do not apply; " +
			"issue a key afterwards with: uploads keys create --user USER_ID")
	case command == "users show" && (o.ID == "") == (o.Email == ""):
		return errors.New("users show needs --id or --email (one of them)")
	case (command == "keys create" || command == "keys list" || command == "audit") && o.UserID == "":
		return missing("user")
	case (command == "keys revoke" || command == "users delete") && o.ID == "":
		return missing("id")
	}
	return nil
}

// Run runs command, one of Commands, and prints its result to out.
func Run(ctx context.Context, client *ent.Client, command string, o Options, out io.Writer) error {
	if err := Validate(command, o); err != nil {
		return err
	}
	switch command {
	case "users create":
		return createUser(ctx, client, o, out)
	case "users list":
		return listUsers(ctx, client, o, out)
	case "users show":
		return showUser(ctx, client, o, out)
	case "users link":
		return linkUser(ctx, client, o, out)
	case "keys create":
		return createKey(ctx, client, o, out)
	case "keys list":
		return listKeys(ctx, client, o, out)
	case "keys revoke":
		return revokeKey(ctx, client, o, out)
	case "audit":
		return showAudit(ctx, client, o, out)
	default:
		return fmt.Errorf("unknown command %q (commands: %s)", command, strings.Join(Commands, ", "))
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
