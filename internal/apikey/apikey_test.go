package apikey_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/scope"
)

func openDB(t *testing.T) (*ent.Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	client, err := database.Open(context.Background(), database.SQLiteURL(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, path
}

func TestGeneratedKeys(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		secret, prefix, digest := apikey.Generate()
		if !apikey.WellFormed(secret) || !strings.HasPrefix(secret, "ukey_") || len(secret) != 5+64 {
			t.Fatalf("malformed secret %q", secret)
		}
		if !strings.HasPrefix(secret, prefix) || len(prefix) >= len(secret)/2 {
			t.Fatalf("prefix %q gives away too much of the secret", prefix)
		}
		if digest == secret || strings.Contains(digest, secret[5:]) {
			t.Fatal("digest contains the secret")
		}
		if seen[secret] {
			t.Fatal("duplicate secret")
		}
		seen[secret] = true
	}
	for _, bad := range []string{"", "abcdef1234567890", "ukey_", "ukey_" + strings.Repeat("g", 64), "UKEY_" + strings.Repeat("a", 64), "ukey_" + strings.Repeat("A", 64)} {
		if apikey.WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func TestAuthenticateAndRevoke(t *testing.T) {
	t.Parallel()
	client, _ := openDB(t)
	ctx := context.Background()
	u, key, secret, err := admin.CreateUser(ctx, client, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.NewAuthenticator(client)
	got, err := keys.Authenticate(ctx, secret)
	if err != nil || got.OwnerID != u.ID || got.ID != key.ID {
		t.Fatalf("Authenticate = %v, %v", got, err)
	}
	keys.Flush()
	first, _ := client.APIKey.Get(ctx, key.ID)
	if first.LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}
	// Recorded at most once a minute per key: not a write per request.
	if _, err := keys.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	keys.Flush()
	if again, _ := client.APIKey.Get(ctx, key.ID); !again.LastUsedAt.Equal(*first.LastUsedAt) {
		t.Errorf("last use written again at once: %v, then %v", first.LastUsedAt, again.LastUsedAt)
	}
	if _, err := apikey.Revoke(ctx, client, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
		t.Errorf("revoked key: err = %v, want ErrInvalid at once", err)
	}
	if _, err := apikey.Revoke(ctx, client, "key_00000000000000000000000000000000"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}

// TestSecretsNeverStored reads the raw database file and finds no secret.
func TestSecretsNeverStored(t *testing.T) {
	t.Parallel()
	client, path := openDB(t)
	ctx := context.Background()
	var secrets []string
	for i := range 20 {
		u, _, secret, err := admin.CreateUser(ctx, client, strings.Repeat("x", i+1)+"@example.com")
		if err != nil {
			t.Fatal(err)
		}
		_, more, err := apikey.Create(ctx, client, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret, more)
	}
	client.Close() // checkpoint the WAL into the file
	var raw []byte
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("database file is empty")
	}
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s[5:])) || bytes.Contains(bytes.ToUpper(raw), []byte(strings.ToUpper(s[13:]))) {
			t.Fatalf("secret %s… found in the database file", s[:13])
		}
		if !bytes.Contains(raw, []byte(apikey.Digest(s))) {
			t.Fatal("digest not found: is the file the one written?")
		}
	}
}

// TestScopesAndExpiry: a key made without scopes stores no list, so it has
// every scope, those of later releases too; one made with scopes has
// those; the expiry is kept as given, in UTC.
func TestScopesAndExpiry(t *testing.T) {
	t.Parallel()
	client, _ := openDB(t)
	ctx := context.Background()
	u, _, _, err := admin.CreateUser(ctx, client, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := apikey.Create(ctx, client, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Date(2031, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	some, _, err := apikey.CreateWith(ctx, client, u.ID, apikey.Grant{Scopes: scope.Set(scope.UploadsRead | scope.UploadsDelete), ExpiresAt: expiry})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := client.QueryContext(ctx, "SELECT id, scopes FROM api_keys WHERE id IN (?, ?)", all.ID, some.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	scopes := map[string]sql.NullString{}
	for rows.Next() {
		var id string
		var s sql.NullString
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		scopes[id] = s
	}
	if s := scopes[all.ID]; s.Valid {
		t.Errorf("a key made without scopes stored the list %q: scopes added later would not be its", s.String)
	}
	if s := scopes[some.ID]; !s.Valid || !strings.Contains(s.String, "uploads:read") || strings.Contains(s.String, "uploads:write") {
		t.Errorf("a key made with uploads:read and uploads:delete stored %v", s)
	}

	all, _ = client.APIKey.Get(ctx, all.ID)
	some, _ = client.APIKey.Get(ctx, some.ID)
	if !apikey.AllScopes(all) || apikey.ScopesOf(all) != scope.All || all.ExpiresAt != nil {
		t.Errorf("key without scopes or expiry: scopes %v (all: %v), expires %v", apikey.ScopesOf(all), apikey.AllScopes(all), all.ExpiresAt)
	}
	if apikey.AllScopes(some) || apikey.ScopesOf(some).String() != "uploads:read uploads:delete" {
		t.Errorf("key with two scopes has %q (all: %v)", apikey.ScopesOf(some), apikey.AllScopes(some))
	}
	if some.ExpiresAt == nil || !some.ExpiresAt.Equal(expiry) {
		t.Errorf("expires at %v, want %v", some.ExpiresAt, expiry)
	}
	// A name this release does not know (a scope since removed) grants nothing.
	if got := apikey.ScopesOf(&ent.APIKey{Scopes: []string{"uploads:read", "uploads:everything"}}); got != scope.Set(scope.UploadsRead) {
		t.Errorf("ScopesOf with an unknown name = %q", got)
	}
}

// TestLastUseOffTheRequestPath: authenticating a request runs no write;
// the key's last use is written afterwards, all keys' together (one
// transaction), and appears within the write interval without a Flush.
func TestLastUseOffTheRequestPath(t *testing.T) {
	t.Parallel()
	client, _ := openDB(t)
	ctx := context.Background()
	var mu sync.Mutex
	var updates, begins int
	counted := ent.NewClient(ent.Driver(dialect.DebugWithContext(client.Driver(), func(_ context.Context, v ...any) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprint(v...)
		if strings.Contains(line, "UPDATE") {
			updates++
		}
		if strings.Contains(line, "started") {
			begins++
		}
	})))
	statements := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return updates, begins
	}
	var secrets, ids []string
	for _, email := range []string{"a@example.com", "b@example.com"} {
		_, key, secret, err := admin.CreateUser(ctx, client, email)
		if err != nil {
			t.Fatal(err)
		}
		secrets, ids = append(secrets, secret), append(ids, key.ID)
	}

	keys := apikey.NewAuthenticator(counted)
	for _, secret := range secrets {
		if _, err := keys.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if u, b := statements(); u != 0 || b != 0 {
		t.Fatalf("authenticating ran %d UPDATEs in %d transactions, want none", u, b)
	}
	keys.Flush()
	if u, b := statements(); u != len(secrets) || b != 1 {
		t.Errorf("writing the last uses ran %d UPDATEs in %d transactions, want %d in one", u, b, len(secrets))
	}
	for _, id := range ids {
		if k := client.APIKey.GetX(ctx, id); k.LastUsedAt == nil {
			t.Errorf("key %s: last use not written", id)
		}
	}

	// Without a Flush: written once the interval is over.
	keys = apikey.NewAuthenticator(client)
	keys.WriteUsesEvery(10 * time.Millisecond)
	client.APIKey.UpdateOneID(ids[0]).ClearLastUsedAt().ExecX(ctx)
	if _, err := keys.Authenticate(ctx, secrets[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for client.APIKey.GetX(ctx, ids[0]).LastUsedAt == nil {
		if time.Now().After(deadline) {
			t.Fatal("last use not written 5 s after the write interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
