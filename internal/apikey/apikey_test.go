package apikey_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
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
	first, _ := client.APIKey.Get(ctx, key.ID)
	if first.LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}
	// Recorded at most once a minute per key: not a write per request.
	if _, err := keys.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
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
