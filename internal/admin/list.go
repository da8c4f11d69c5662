package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
)

// These let an operator who lost a key (the demo key is printed once) find
// the user and key ids, then revoke or replace the key.

// UserSummary is one row of `users list`.
type UserSummary struct {
	UserID     string    `json:"user_id"`
	Email      *string   `json:"email"`
	CreatedAt  time.Time `json:"created_at"`
	ActiveKeys int       `json:"active_keys"`
	Uploads    int       `json:"uploads"`
}

// KeySummary describes an API key without its secret, which is never
// stored: the prefix tells keys apart.
type KeySummary struct {
	APIKeyID   string     `json:"api_key_id"`
	UserID     string     `json:"user_id"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`     // every scope's name for a key with all
	AllScopes  bool       `json:"all_scopes"` // made without a list: scopes added later are its too
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// UserDetails is what `users show` prints.
type UserDetails struct {
	UserID     string            `json:"user_id"`
	Email      *string           `json:"email"`
	CreatedAt  time.Time         `json:"created_at"`
	Uploads    int               `json:"uploads"`
	Identities []IdentitySummary `json:"identities"`
	APIKeys    []KeySummary      `json:"api_keys"`
}

// ListUsers returns every user, oldest first, with their counts of active
// keys and uploads.
func ListUsers(ctx context.Context, client *ent.Client) ([]UserSummary, error) {
	users, err := client.User.Query().Order(ent.Asc(user.FieldCreatedAt), ent.Asc(user.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	var keyCounts, uploadCounts []struct {
		OwnerID string `json:"owner_id"`
		Count   int    `json:"count"`
	}
	err = client.APIKey.Query().Where(apikey.RevokedAtIsNil()).
		GroupBy(apikey.FieldOwnerID).Aggregate(ent.Count()).Scan(ctx, &keyCounts)
	if err != nil {
		return nil, fmt.Errorf("count keys: %w", err)
	}
	err = client.Upload.Query().GroupBy(upload.FieldOwnerID).Aggregate(ent.Count()).Scan(ctx, &uploadCounts)
	if err != nil {
		return nil, fmt.Errorf("count uploads: %w", err)
	}
	keys, uploads := map[string]int{}, map[string]int{}
	for _, c := range keyCounts {
		keys[c.OwnerID] = c.Count
	}
	for _, c := range uploadCounts {
		uploads[c.OwnerID] = c.Count
	}
	summaries := make([]UserSummary, 0, len(users))
	for _, u := range users {
		summaries = append(summaries, UserSummary{
			UserID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt.UTC(),
			ActiveKeys: keys[u.ID], Uploads: uploads[u.ID],
		})
	}
	return summaries, nil
}

func listUsers(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	users, err := ListUsers(ctx, client)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(users)
	}
	if len(users) == 0 {
		_, err := fmt.Fprintln(out, "No users. Create one with: uploads users create --email EMAIL")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER ID\tEMAIL\tCREATED\tACTIVE KEYS\tUPLOADS")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", u.UserID, emailText(u.Email), formatTime(u.CreatedAt), u.ActiveKeys, u.Uploads)
	}
	return tw.Flush()
}

// ShowUser finds a user by id or by email (exactly one of them) and
// returns them with their keys.
func ShowUser(ctx context.Context, client *ent.Client, id, email string) (*UserDetails, error) {
	query := client.User.Query()
	if err := checkUsersShow(Options{ID: id, Email: email}); err != nil {
		return nil, err
	}
	switch {
	case id != "":
		query.Where(user.ID(id))
	default:
		query.Where(user.Email(strings.ToLower(strings.TrimSpace(email))))
	}
	u, err := query.Only(ctx)
	if ent.IsNotFound(err) {
		if id != "" {
			return nil, fmt.Errorf("no user with id %q", id)
		}
		return nil, fmt.Errorf("no user with email %q", email)
	}
	if err != nil {
		return nil, err
	}
	uploads, err := client.Upload.Query().Where(upload.OwnerID(u.ID)).Count(ctx)
	if err != nil {
		return nil, err
	}
	identities, err := identitiesOf(ctx, client, u.ID)
	if err != nil {
		return nil, err
	}
	keys, err := listKeysOf(ctx, client, u.ID)
	if err != nil {
		return nil, err
	}
	return &UserDetails{
		UserID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt.UTC(), Uploads: uploads,
		Identities: identities, APIKeys: keys,
	}, nil
}

func showUser(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	details, err := ShowUser(ctx, client, o.ID, o.Email)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(details)
	}
	fmt.Fprintf(out, "User %s (%s), created %s, %d uploads.\n", details.UserID, emailText(details.Email), formatTime(details.CreatedAt), details.Uploads)
	if len(details.Identities) == 0 {
		fmt.Fprintf(out, "No sign-in identities. Link one with: uploads users link --id %s --subject SUBJECT\n", details.UserID)
	} else if err := writeIdentities(out, details.Identities); err != nil {
		return err
	}
	if len(details.APIKeys) == 0 {
		_, err := fmt.Fprintf(out, "No API keys. Issue one with: uploads keys create --user %s\n", details.UserID)
		return err
	}
	fmt.Fprintln(out, "API keys:")
	return writeKeys(out, details.APIKeys)
}

// ListKeys returns a user's API keys, oldest first, revoked ones included.
func ListKeys(ctx context.Context, client *ent.Client, userID string) ([]KeySummary, error) {
	if err := needsUser("keys list")(Options{UserID: userID}); err != nil {
		return nil, err
	}
	exists, err := client.User.Query().Where(user.ID(userID)).Exist(ctx)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("no user with id %q", userID)
	}
	return listKeysOf(ctx, client, userID)
}

func listKeysOf(ctx context.Context, client *ent.Client, userID string) ([]KeySummary, error) {
	keys, err := client.APIKey.Query().Where(apikey.OwnerID(userID)).
		Order(ent.Asc(apikey.FieldCreatedAt), ent.Asc(apikey.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	summaries := make([]KeySummary, 0, len(keys))
	for _, k := range keys {
		summaries = append(summaries, summarize(k))
	}
	return summaries, nil
}

func listKeys(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	keys, err := ListKeys(ctx, client, o.UserID)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(keys)
	}
	if len(keys) == 0 {
		_, err := fmt.Fprintf(out, "No API keys. Issue one with: uploads keys create --user %s\n", o.UserID)
		return err
	}
	return writeKeys(out, keys)
}

// writeKeys prints keys as a table.
func writeKeys(out io.Writer, keys []KeySummary) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tPREFIX\tSCOPES\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.APIKeyID, k.Prefix, scopesText(k), formatTime(k.CreatedAt),
			formatOptional(k.ExpiresAt, "never"), formatOptional(k.LastUsedAt, "never"), formatOptional(k.RevokedAt, "-"))
	}
	return tw.Flush()
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func formatOptional(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return formatTime(*t)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// emailText is a user's email address for people to read; users made at
// sign-in from a token without an email claim have none.
func emailText(email *string) string {
	if email == nil {
		return "no email"
	}
	return *email
}
