package webhook_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/safedelete/uploads/internal/webhook"
)

// TestNewSecret: secrets are whsec_ and 32 random bytes in base64, which
// the Standard Webhooks library takes as they are shown.
func TestNewSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		display, raw := webhook.NewSecret()
		if len(raw) != 32 || display != "whsec_"+base64.StdEncoding.EncodeToString(raw) || seen[display] {
			t.Fatalf("secret %q (%d bytes)", display, len(raw))
		}
		seen[display] = true
		if _, err := standardwebhooks.NewWebhook(display); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSealer: a sealed secret opens with the same key for the same
// endpoint only, and sealing twice gives different bytes (random nonce).
func TestSealer(t *testing.T) {
	t.Parallel()
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	sealer, _ := webhook.NewSealer(key)
	_, secret := webhook.NewSecret()
	sealed := sealer.Seal("whe_a", secret)
	if opened, err := sealer.Open("whe_a", sealed); err != nil || !bytes.Equal(opened, secret) {
		t.Fatalf("Open = %v", err)
	}
	if bytes.Equal(sealed, sealer.Seal("whe_a", secret)) || bytes.Contains(sealed, secret) {
		t.Fatal("sealing is deterministic, or shows the secret")
	}
	if _, err := sealer.Open("whe_b", sealed); err == nil {
		t.Fatal("a secret sealed for one endpoint opens for another")
	}
	otherKey := make([]byte, webhook.KeySize)
	_, _ = rand.Read(otherKey)
	other, _ := webhook.NewSealer(otherKey)
	if _, err := other.Open("whe_a", sealed); err == nil {
		t.Fatal("a secret opens under another key")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := sealer.Open("whe_a", sealed); err == nil {
		t.Fatal("an altered sealed secret opens")
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := webhook.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer with a %d-byte key succeeded", n)
		}
	}
}

// TestParseKey: a key setting is the base64 of exactly 32 bytes; errors
// never quote it.
func TestParseKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	if got, err := webhook.ParseKey(" " + base64.StdEncoding.EncodeToString(key) + "\n"); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ParseKey = %v", err)
	}
	for _, bad := range []string{"", "c2VjcmV0LWtleS1zaG9ydA==", "not base64 at all!", base64.StdEncoding.EncodeToString(make([]byte, 64))} {
		_, err := webhook.ParseKey(bad)
		if err == nil || bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
}

// TestLoadOrCreateKey: the first call creates a key file readable by its
// owner only; later calls, and calls racing the first, get the same key.
func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "webhook.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = webhook.LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || len(keys[i]) != webhook.KeySize || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("call %d: %d-byte key, %v; want the same key for all", i, len(keys[i]), errs[i])
		}
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", info.Mode(), err)
	}
	if again, err := webhook.LoadOrCreateKey(path); err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("reloaded %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 { // before the nested case below
		t.Fatalf("%d files in the directory, want the key alone", len(entries))
	}

	// A directory nothing made yet, as DATA_DIR with PostgreSQL and S3.
	nested := filepath.Join(dir, "data", "deeper", "webhook.key")
	if _, err := webhook.LoadOrCreateKey(nested); err != nil {
		t.Fatalf("a key in a directory that does not exist yet: %v", err)
	}
	if info, err := os.Stat(filepath.Dir(nested)); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("the key's directory: %v, %v; want 0700", info, err)
	}

	bad := filepath.Join(dir, "bad.key")
	_ = os.WriteFile(bad, []byte("hunter2"), 0o600)
	if _, err := webhook.LoadOrCreateKey(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a malformed key file: %v", err)
	}
}
