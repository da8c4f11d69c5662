package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/apikey"
)

func createKey(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	exists, err := client.User.Query().Where(user.ID(o.UserID)).Exist(ctx)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("no user with id %q", o.UserID)
	}
	key, secret, err := apikey.CreateWith(ctx, client, o.UserID, o.Key)
	if err != nil {
		return err
	}
	fields := keyFields(key)
	fields["user_id"], fields["api_key"] = o.UserID, secret
	return report(out, o.JSON, fields, "API key %s for user %s: %s\n%sStore the key now: it is not shown again.\n",
		key.ID, o.UserID, secret, keyText(key))
}

// keyFields are what --json says of a new key besides its secret.
func keyFields(key *ent.APIKey) map[string]any {
	return map[string]any{
		"api_key_id": key.ID, "scopes": apikey.ScopesOf(key).Names(), "all_scopes": apikey.AllScopes(key),
		"expires_at": utc(key.ExpiresAt),
	}
}

// keyText is what the text output says of a new key's scopes and expiry.
func keyText(key *ent.APIKey) string {
	scopes := strings.Join(apikey.ScopesOf(key).Names(), " ")
	if apikey.AllScopes(key) {
		scopes = "all (" + scopes + ", and any added later)"
	}
	return fmt.Sprintf("Scopes:  %s\nExpires: %s\n", scopes, formatOptional(key.ExpiresAt, "never"))
}

// summarize describes k without its secret.
func summarize(k *ent.APIKey) KeySummary {
	return KeySummary{
		APIKeyID: k.ID, UserID: k.OwnerID, Prefix: k.Prefix,
		Scopes: apikey.ScopesOf(k).Names(), AllScopes: apikey.AllScopes(k),
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utc(k.ExpiresAt),
		LastUsedAt: utc(k.LastUsedAt), RevokedAt: utc(k.RevokedAt),
	}
}

// scopesText is a key's scopes in a table cell: "all" for a key made
// without a list, else the names, comma-separated.
func scopesText(k KeySummary) string {
	if k.AllScopes {
		return "all"
	}
	if len(k.Scopes) == 0 {
		return "none" // every name it holds is unknown to this release
	}
	return strings.Join(k.Scopes, ",")
}

var days = regexp.MustCompile(`^([0-9]+)d$`)

// maxDays bounds --expires=Nd well inside time.Duration (292 years).
const maxDays = 100 * 366

// ParseExpiry reads --expires: a number of days (90d), a Go duration
// (36h), a date (2027-01-31: the key works through that day, UTC, and
// expires at the midnight after it) or an RFC 3339 time. The time must be
// after now.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	var at time.Time
	if m := days.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > maxDays {
			return time.Time{}, fmt.Errorf("%s is too far: at most %dd", s, maxDays)
		}
		at = now.Add(time.Duration(n) * 24 * time.Hour)
	} else if d, err := time.ParseDuration(s); err == nil {
		at = now.Add(d)
	} else if day, err := time.Parse(time.DateOnly, s); err == nil {
		at = day.AddDate(0, 0, 1)
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t
	} else {
		return time.Time{}, errors.New("want a number of days (90d), a duration (36h), a date (2027-01-31) or an RFC 3339 time (2027-01-31T12:00:00Z)")
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("the key would expire at %s, which is not in the future", formatTime(at))
	}
	return at.UTC(), nil
}
