// Package admin implements the management commands: creating and deleting
// users, and issuing and revoking API keys.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/reconcile"
)

// Commands lists the commands, as typed on the command line.
var Commands = []string{"users create", "users delete", "keys create", "keys revoke", "reconcile"}

// Options are the commands' flags.
type Options struct {
	Email  string
	UserID string
	ID     string
	JSON   bool
	Repair bool
	Grace  time.Duration
}

// RegisterFlags defines the commands' flags on fs.
func RegisterFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Email, "email", "", "email of the new user (users create)")
	fs.StringVar(&o.UserID, "user", "", "id of the user to issue a key for (keys create)")
	fs.StringVar(&o.ID, "id", "", "id of the key to revoke (keys revoke), or of the user to delete with all their uploads (users delete)")
	fs.BoolVar(&o.JSON, "json", false, "print machine-readable JSON")
	fs.BoolVar(&o.Repair, "repair", false, "queue orphaned objects older than --grace for purge (reconcile)")
	fs.DurationVar(&o.Grace, "grace", reconcile.DefaultGrace, "objects younger than this are never queued: an upload in progress looks orphaned for a moment (reconcile)")
}

// Run runs command and prints its result to out.
func Run(ctx context.Context, client *ent.Client, command string, o Options, out io.Writer) error {
	switch command {
	case "users create":
		return createUser(ctx, client, o, out)
	case "keys create":
		return createKey(ctx, client, o, out)
	case "keys revoke":
		return revokeKey(ctx, client, o, out)
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
	if o.Email == "" {
		return errors.New("users create needs --email")
	}
	u, key, secret, err := CreateUser(ctx, client, o.Email)
	if err != nil {
		return err
	}
	return report(out, o.JSON, map[string]string{
		"user_id": u.ID, "email": u.Email, "api_key_id": key.ID, "api_key": secret,
	}, "Created user %s (%s).\nAPI key %s: %s\nStore the key now: it is not shown again.\n",
		u.ID, u.Email, key.ID, secret)
}

func createKey(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	if o.UserID == "" {
		return errors.New("keys create needs --user")
	}
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
	return report(out, o.JSON, map[string]string{
		"user_id": o.UserID, "api_key_id": key.ID, "api_key": secret,
	}, "API key %s for user %s: %s\nStore the key now: it is not shown again.\n", key.ID, o.UserID, secret)
}

func revokeKey(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	if o.ID == "" {
		return errors.New("keys revoke needs --id")
	}
	key, err := apikey.Revoke(ctx, client, o.ID)
	if errors.Is(err, apikey.ErrNotFound) {
		return fmt.Errorf("no API key with id %q", o.ID)
	}
	if err != nil {
		return err
	}
	revokedAt := key.RevokedAt.UTC().Format(time.RFC3339)
	return report(out, o.JSON, map[string]string{
		"api_key_id": key.ID, "user_id": key.OwnerID, "revoked_at": revokedAt,
	}, "Revoked API key %s of user %s at %s.\n", key.ID, key.OwnerID, revokedAt)
}

func report(out io.Writer, asJSON bool, fields map[string]string, format string, args ...any) error {
	if asJSON {
		return json.NewEncoder(out).Encode(fields)
	}
	_, err := fmt.Fprintf(out, format, args...)
	return err
}
