// Package admin implements the management commands: creating, listing,
// showing and deleting users, and issuing, listing and revoking API keys.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
)

// Commands lists the commands that need only the database, as typed on
// the command line.
var Commands = []string{"users create", "users list", "users show", "keys create", "keys list", "keys revoke", "audit"}

// Options are the commands' flags.
type Options struct {
	Email  string
	UserID string
	ID     string
	JSON   bool
	Limit  int // audit: most events shown; 0 for all
}

// Validate checks that o has the flags command needs, before anything is
// opened.
func Validate(command string, o Options) error {
	missing := func(flag string) error { return fmt.Errorf("%s needs --%s", command, flag) }
	switch {
	case command == "users create" && o.Email == "":
		return missing("email")
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

// CreateUser creates a user with one API key and returns both; the secret is
// not retrievable later.
func CreateUser(ctx context.Context, client *ent.Client, email string) (*ent.User, *ent.APIKey, string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != strings.TrimSpace(email) {
		return nil, nil, "", fmt.Errorf("invalid email address %q", email)
	}
	var (
		u      *ent.User
		key    *ent.APIKey
		secret string
	)
	err = database.WithTx(ctx, client, func(tx *ent.Tx) (err error) {
		u, err = tx.User.Create().SetEmail(strings.ToLower(addr.Address)).Save(ctx)
		if ent.IsConstraintError(err) {
			return fmt.Errorf("a user with email %q already exists", addr.Address)
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		key, secret, err = apikey.Create(ctx, tx.Client(), u.ID)
		return err
	})
	if err != nil {
		return nil, nil, "", err
	}
	return u, key, secret, nil
}

func createUser(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	u, key, secret, err := CreateUser(ctx, client, o.Email)
	if err != nil {
		return err
	}
	return report(out, o.JSON, map[string]any{
		"user_id": u.ID, "email": u.Email, "api_key_id": key.ID, "api_key": secret,
	}, "Created user %s (%s).\nAPI key %s: %s\nStore the key now: it is not shown again.\n",
		u.ID, emailText(u.Email), key.ID, secret)
}

func createKey(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	exists, err := client.User.Query().Where(user.ID(o.UserID)).Exist(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("no user with id %q", o.UserID)
	}
	key, secret, err := apikey.Create(ctx, client, o.UserID)
	if err != nil {
		return err
	}
	return report(out, o.JSON, map[string]any{
		"user_id": o.UserID, "api_key_id": key.ID, "api_key": secret,
	}, "API key %s for user %s: %s\nStore the key now: it is not shown again.\n", key.ID, o.UserID, secret)
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
