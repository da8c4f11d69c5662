package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/testenv"
)

const createEndpointMutation = `mutation($url: String!, $events: [UploadEventKind!]) {
  createWebhookEndpoint(url: $url, events: $events) { secret endpoint { id url events } }
}`

// hook is a receiver that checks every delivery with the Standard Webhooks
// library, as a user's receiver would, and keeps the verified payloads.
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	events   []hookEvent
	refused  int // deliveries that failed verification
}

type hookEvent struct {
	Type      string
	Timestamp time.Time
	Data      struct {
		ID       string
		Filename string
		Size     int64
		Status   string
		Receipt  string
	}
	raw string
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.verifier == nil || h.verifier.Verify(body, r.Header) != nil {
			h.refused++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e hookEvent
		_ = json.Unmarshal(body, &e)
		e.raw = string(body)
		h.events = append(h.events, e)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) trust(t *testing.T, secret string) {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("the secret %q is not a Standard Webhooks secret: %v", secret, err)
	}
	h.mu.Lock()
	h.verifier = v
	h.mu.Unlock()
}

// seen returns "type id" of every verified delivery so far.
func (h *hook) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Type+" "+e.Data.ID)
	}
	return out
}

// settleWebhooks waits until every event so far is recorded (purges end
// in the background) and every delivery has been answered.
func settleWebhooks(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.Eventually(10*time.Second, "every purge recorded", func() bool { return env.PendingPurges() == 0 })
	env.Eventually(10*time.Second, "no delivery pending", func() bool {
		n, err := env.Client().WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).Count(context.Background())
		return err == nil && n == 0
	})
}

func withWebhooks(c *config.Config) {
	c.WebhookAllowHTTP = true
	c.WebhookAllowPrivateNetworks = true // the receiver is on loopback
}

func register(t *testing.T, env *testenv.Env, key, url string, events []string) (id, secret string) {
	t.Helper()
	vars := map[string]any{"url": url}
	if events != nil {
		vars["events"] = events
	}
	res := env.GraphQL(key, createEndpointMutation, vars)
	var data struct {
		CreateWebhookEndpoint struct {
			Secret   string
			Endpoint struct{ ID string }
		}
	}
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("createWebhookEndpoint: %+v", res.Errors)
	}
	return data.CreateWebhookEndpoint.Endpoint.ID, data.CreateWebhookEndpoint.Secret
}

// TestWebhooksFollowAnUpload: a user's receiver hears, verified with the
// Standard Webhooks library, of every change to their upload, in order,
// and of nobody else's.
func TestWebhooksFollowAnUpload(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		withWebhooks(c)
		c.DeleteRetention = time.Hour
	}})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	h := newHook(t)
	_, secret := register(t, env, key, h.URL+"/hooks?token=abc", nil)
	h.trust(t, secret)

	a := env.MustUpload(key, "a.txt", []byte("hello"))
	env.MustUpload(otherKey, "theirs.txt", []byte("theirs"))
	if res := env.DeleteREST(key, a.ID); res.Status != http.StatusOK {
		t.Fatal(res.Status)
	}
	if _, code := restore(t, env, key, a.ID); code != "" {
		t.Fatal(code)
	}
	if d, _ := deleteMany(t, env, key, []string{a.ID}); len(d) != 1 {
		t.Fatal("delete")
	}
	if res := env.GraphQL(key, purgeMutation, map[string]any{"id": a.ID}); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	want := []string{"upload.created " + a.ID, "upload.deleted " + a.ID, "upload.restored " + a.ID, "upload.deleted " + a.ID, "upload.purged " + a.ID}
	settleWebhooks(t, env)
	if got := h.seen(); !slices.Equal(got, want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused != 0 {
		t.Errorf("%d deliveries failed verification", h.refused)
	}
	first := h.events[0]
	if first.Data.Filename != "a.txt" || first.Data.Size != 5 || first.Data.Status != "COMPLETED" || first.Timestamp.IsZero() {
		t.Errorf("upload.created payload: %s", first.raw)
	}
	for _, e := range h.events {
		if strings.Contains(e.raw, key) || strings.Contains(e.raw, secret) || strings.Contains(e.raw, a.ObjectKey) {
			t.Errorf("a payload carries a key, the secret or the object key: %s", e.raw)
		}
	}
	// upload.purged carries the deletion receipt after the fields every
	// event has, unchanged; no other event has one.
	purged := h.events[len(h.events)-1]
	wantData := `"data":{"id":"` + a.ID + `","filename":"a.txt","size":5,"status":"COMPLETED","receipt":"` + purged.Data.Receipt + `"}}`
	if purged.Data.Receipt == "" || !strings.HasSuffix(purged.raw, wantData) {
		t.Errorf("upload.purged payload: %s", purged.raw)
	}
	jwks := env.Do(http.MethodGet, receipt.JWKSPath, nil, nil)
	if _, payload, err := receipt.Verify(purged.Data.Receipt, []byte(jwks.Body)); err != nil || !strings.Contains(string(payload), `"upload_id":"`+a.ID+`"`) {
		t.Errorf("upload.purged's receipt: %v %s", err, payload)
	}
	for _, e := range h.events[:len(h.events)-1] {
		if strings.Contains(e.raw, "receipt") {
			t.Errorf("%s carries a receipt: %s", e.Type, e.raw)
		}
	}
}

// TestWebhookSecretSealed: the signing secret is shown once and is not in
// the database in plain text.
func TestWebhookSecretSealed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: withWebhooks})
	_, key := env.NewUser()
	id, secret := register(t, env, key, "https://hooks.example.com/x", []string{"DELETED"})
	raw := strings.TrimPrefix(secret, "whsec_")
	endpoint, err := env.Client().WebhookEndpoint.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(endpoint.Secret, []byte(raw)) || bytes.Contains(endpoint.Secret, []byte(secret)) {
		t.Error("the secret is stored as given")
	}
	res := env.GraphQL(key, `{ viewer { webhookEndpoints { id url events } } }`, nil)
	if strings.Contains(string(res.Data), raw) || !strings.Contains(string(res.Data), `"events":["DELETED"]`) {
		t.Errorf("webhookEndpoints: %s", res.Data)
	}
}

// TestWebhookRolledBackDeleteSendsNothing: a delete whose transaction fails
// after its deliveries were queued (here, writing its audit event) queues
// no event: the receiver hears of the upload's creation only.
func TestWebhookRolledBackDeleteSendsNothing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: withWebhooks})
	_, key := env.NewUser()
	h := newHook(t)
	_, secret := register(t, env, key, h.URL, nil)
	h.trust(t, secret)
	a := env.MustUpload(key, "a.txt", []byte("a"))
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE audit_events"); err != nil {
		t.Fatal(err)
	}
	expectError(t, env.GraphQL(key, deleteMutation, map[string]any{"id": a.ID}), "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
	settleWebhooks(t, env)
	if got := h.seen(); !slices.Equal(got, []string{"upload.created " + a.ID}) {
		t.Errorf("deliveries after a failed delete: %v", got)
	}
}

// TestWebhookEndpointRules: what registering refuses, and that deliveries
// to private addresses are refused at connect time unless allowed.
func TestWebhookEndpointRules(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{}) // production defaults
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	for _, url := range []string{"http://hooks.example.com/x", "ftp://x", "https://user:pw@hooks.example.com", "not a url", ""} {
		res := env.GraphQL(key, createEndpointMutation, map[string]any{"url": url})
		if len(res.Errors) == 0 || res.Errors[0].Code() != "BAD_USER_INPUT" {
			t.Errorf("createWebhookEndpoint(%q): %+v %s", url, res.Errors, res.Data)
		}
	}
	h := newHook(t)
	loopback := strings.Replace(h.URL, "http://", "https://", 1)
	id, _ := register(t, env, key, loopback, []string{"CREATED"})
	env.MustUpload(key, "a.txt", []byte("a"))
	var last struct {
		Viewer struct {
			WebhookEndpoints []struct {
				Deliveries []struct {
					ID, Status, LastError string
					Attempts              int
				}
			}
		}
	}
	env.Eventually(10*time.Second, "a failed attempt", func() bool {
		res := env.GraphQL(key, `{ viewer { webhookEndpoints { deliveries { id status attempts lastError } } } }`, nil)
		if res.Decode(&last) != nil || len(last.Viewer.WebhookEndpoints) != 1 || len(last.Viewer.WebhookEndpoints[0].Deliveries) != 1 {
			return false
		}
		return last.Viewer.WebhookEndpoints[0].Deliveries[0].LastError != ""
	})
	d := last.Viewer.WebhookEndpoints[0].Deliveries[0]
	// Unreachable, without saying where the name led (an internal DNS oracle).
	if d.Status != "PENDING" || !strings.HasPrefix(d.LastError, "could not connect") || strings.Contains(d.LastError, "127.0.0.1") {
		t.Errorf("a delivery to loopback: %+v", d)
	}
	if n := len(h.seen()) + h.refused; n != 0 {
		t.Errorf("the loopback receiver was reached %d times", n)
	}
	// Someone else's endpoint and delivery are not found.
	for _, q := range []string{
		`mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedWebhookEndpointId } }`,
		`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`,
	} {
		expectError(t, env.GraphQL(otherKey, q, map[string]any{"id": id}), "NOT_FOUND", "Webhook endpoint not found")
	}
	expectError(t, env.GraphQL(otherKey, `mutation($id: ID!) { redeliver(id: $id) { id } }`, map[string]any{"id": d.ID}), "NOT_FOUND", "Webhook delivery not found")
	if res := env.GraphQL(key, `mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedWebhookEndpointId } }`, map[string]any{"id": id}); len(res.Errors) > 0 {
		t.Errorf("deleting my endpoint: %+v", res.Errors)
	}
}
