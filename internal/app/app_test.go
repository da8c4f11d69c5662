package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestReadyzReportsAnUnusableWebhookKey: when the webhook key no longer
// opens the stored endpoint secrets (the key file replaced), no delivery
// can be signed: /readyz says so in its "webhooks" check, instead of
// ready while deliveries pile up.
func TestReadyzReportsAnUnusableWebhookKey(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	res := env.GraphQL(key, `mutation { createWebhookEndpoint(url: "https://hooks.example.com/a") { secret } }`, nil)
	if len(res.Errors) > 0 {
		t.Fatalf("createWebhookEndpoint: %+v", res.Errors)
	}
	if code, checks := readyz(t, env); code != http.StatusOK || checks["webhooks"] != "ok" {
		t.Fatalf("/readyz with the key that sealed the secrets: %d %v", code, checks)
	}

	// Another deployment's key, as an operator who replaced the file would.
	other := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	if err := os.WriteFile(env.Config.WebhookKeyPath(), []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	env.Restart(testenv.Options{})
	if code, checks := readyz(t, env); code != http.StatusServiceUnavailable || checks["webhooks"] != "unavailable" {
		t.Fatalf("/readyz with a key that opens no secret: %d %v; want 503, webhooks unavailable", code, checks)
	}
}

func readyz(t *testing.T, env *testenv.Env) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(env.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Checks map[string]string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body.Checks
}

// TestShutdownWritesLastUses: the last use of a key, written off the
// request's path, is written by the time the service has stopped.
func TestShutdownWritesLastUses(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	if res := env.GraphQL(key, `{ __typename }`, nil); len(res.Errors) > 0 {
		t.Fatalf("query: %+v", res.Errors)
	}
	env.Restart(testenv.Options{})
	used := env.Client().APIKey.Query().Where(apikey.OwnerID(userID)).OnlyX(context.Background())
	if used.LastUsedAt == nil {
		t.Error("the key's last use was not written at shutdown")
	}
}
