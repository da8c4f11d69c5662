package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

// keyed posts a GraphQL operation with an Idempotency-Key (none when
// empty) and returns the response as it came.
func keyed(env *testenv.Env, apiKey, idempotencyKey, query string, variables map[string]any) testenv.Response {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	h := http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {apiKey}}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	return env.Do(http.MethodPost, "/graphql", h, bytes.NewReader(body))
}

func errorCodes(t *testing.T, res testenv.Response) []string {
	t.Helper()
	var g testenv.GraphQLResponse
	if err := json.Unmarshal([]byte(res.Body), &g); err != nil {
		t.Fatalf("not a GraphQL response: %d %s", res.Status, res.Body)
	}
	var codes []string
	for _, e := range g.Errors {
		codes = append(codes, e.Code())
	}
	return codes
}

func sameAnswer(t *testing.T, first, again testenv.Response, replayed bool) {
	t.Helper()
	if again.Status != first.Status || again.Body != first.Body || again.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
		t.Errorf("retry answered %d %s %s\nfirst answered %d %s %s", again.Status, again.Header.Get("Content-Type"), again.Body,
			first.Status, first.Header.Get("Content-Type"), first.Body)
	}
	if got := again.Header.Get("Idempotent-Replayed") == "true"; got != replayed {
		t.Errorf("Idempotent-Replayed %q, want replayed=%v", again.Header.Get("Idempotent-Replayed"), replayed)
	}
}

func deletedEvents(t *testing.T, env *testenv.Env) int {
	t.Helper()
	return env.Client().AuditEvent.Query().Where(auditevent.KindEQ(auditevent.KindDELETED)).CountX(context.Background())
}

const deleteOne = `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId message } }`

// TestIdempotencyKeyGraphQL: a retried mutation with its key gets the first
// answer back byte for byte; the key is refused when malformed, reused or
// in use, with nothing done; queries ignore it.
func TestIdempotencyKeyGraphQL(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))
	other := env.MustUpload(key, "b.txt", []byte("b"))

	first := keyed(env, key, "k1", deleteOne, map[string]any{"id": u.ID})
	if first.Status != 200 || !strings.Contains(first.Body, `"deletedUploadId":"`+u.ID+`"`) {
		t.Fatalf("first delete: %d %s", first.Status, first.Body)
	}
	sameAnswer(t, first, first, false)
	sameAnswer(t, first, keyed(env, key, "k1", deleteOne, map[string]any{"id": u.ID}), true)
	sameAnswer(t, first, keyed(env, key, `"k1"`, deleteOne, map[string]any{"id": u.ID}), true)
	if n := deletedEvents(t, env); n != 1 {
		t.Errorf("%d deleted events, want 1", n)
	}
	// Without the key, the retry is NOT_FOUND, as before.
	if codes := errorCodes(t, keyed(env, key, "", deleteOne, map[string]any{"id": u.ID})); len(codes) != 1 || codes[0] != graph.CodeNotFound {
		t.Errorf("retry without a key: %v, want NOT_FOUND", codes)
	}

	for _, tc := range []struct {
		name, key string
		variables map[string]any
		status    int
		code      string
	}{
		{"a malformed key", `"k1`, map[string]any{"id": other.ID}, 400, graph.CodeBadUserInput},
		{"a key of another request", "k1", map[string]any{"id": other.ID}, 422, "IDEMPOTENCY_KEY_REUSED"},
	} {
		res := keyed(env, key, tc.key, deleteOne, tc.variables)
		if codes := errorCodes(t, res); res.Status != tc.status || len(codes) != 1 || codes[0] != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.Status, res.Body, tc.status, tc.code)
		}
		if strings.Contains(res.Body, `"data"`) {
			t.Errorf("%s: %s has data: nothing ran", tc.name, res.Body)
		}
		if tc.code == graph.CodeBadUserInput && !strings.Contains(res.Body, "Idempotency-Key") {
			t.Errorf("%s: %s does not name the header", tc.name, res.Body)
		}
		env.AssertIntact(other)
	}

	// A query ignores the header, even a malformed one.
	q := keyed(env, key, `"unterminated`, `query($id: ID!) { upload(id: $id) { id } }`, map[string]any{"id": other.ID})
	if q.Status != 200 || !strings.Contains(q.Body, other.ID) || q.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("query with a key: %d %s", q.Status, q.Body)
	}
}

// TestIdempotencyKeyInUseGraphQL: while the first request with a key runs,
// the same request with the same key is refused with 409 and does nothing.
func TestIdempotencyKeyInUseGraphQL(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	running, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	graph.SetAfterRead(env.App.Resolver, func(context.Context) {
		once.Do(func() { close(running); <-release })
	})
	firstDone := make(chan testenv.Response)
	go func() { firstDone <- keyed(env, key, "slow", deleteOne, map[string]any{"id": u.ID}) }()
	<-running
	second := keyed(env, key, "slow", deleteOne, map[string]any{"id": u.ID})
	if codes := errorCodes(t, second); second.Status != 409 || len(codes) != 1 || codes[0] != "IDEMPOTENCY_KEY_IN_USE" {
		t.Errorf("same key while running: %d %s, want 409 IDEMPOTENCY_KEY_IN_USE", second.Status, second.Body)
	}
	close(release)
	first := <-firstDone
	if first.Status != 200 || !strings.Contains(first.Body, `"deletedUploadId":"`+u.ID+`"`) {
		t.Fatalf("first delete: %d %s", first.Status, first.Body)
	}
	sameAnswer(t, first, keyed(env, key, "slow", deleteOne, map[string]any{"id": u.ID}), true)
	if n := deletedEvents(t, env); n != 1 {
		t.Errorf("%d deleted events, want 1", n)
	}
}

// TestIdempotencyKeyUploadFile: a retried upload with its key creates
// nothing and stores no second object.
func TestIdempotencyKeyUploadFile(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	h := http.Header{"Idempotency-Key": {"upload-1"}}
	first := env.UploadFileWith(h, "", key, "a.txt", "text/plain", []byte("hello"))
	if first.Status != 200 || !strings.Contains(first.Body, `"status":"COMPLETED"`) {
		t.Fatalf("upload: %d %s", first.Status, first.Body)
	}
	sameAnswer(t, first, env.UploadFileWith(h, "", key, "a.txt", "text/plain", []byte("hello")), true)
	if n := env.Client().Upload.Query().CountX(context.Background()); n != 1 {
		t.Errorf("%d uploads, want 1", n)
	}
	if keys := env.ObjectKeys(); len(keys) != 1 {
		t.Errorf("objects %v, want 1", keys)
	}
	// Another file under the same key is another request.
	other := env.UploadFileWith(h, "", key, "b.txt", "text/plain", []byte("other"))
	if codes := errorCodes(t, other); other.Status != 422 || len(codes) != 1 || codes[0] != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another file, same key: %d %s", other.Status, other.Body)
	}
	if n := env.Client().Upload.Query().Where(upload.Filename("b.txt")).CountX(context.Background()); n != 0 {
		t.Errorf("the refused upload was stored")
	}
}

// TestIdempotencyKeyNotFinal: an answer with a transient or credential
// error is not stored, so the retry runs again; a field whose effect
// committed in the first run answers what it did, not NOT_FOUND.
func TestIdempotencyKeyNotFinal(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, _ := env.NewUser()
	_, deleteOnly, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.UploadsDelete | scope.UploadsWrite | scope.UploadsRead)})
	if err != nil {
		t.Fatal(err)
	}
	u := env.MustUpload(deleteOnly, "a.txt", []byte("a"))
	const both = `mutation($id: ID!) {
		a: deleteUpload(id: $id) { deletedUploadId }
		b: createWebhookEndpoint(url: "https://example.com/hook", events: [DELETED]) { secret }
	}`
	first := keyed(env, deleteOnly, "mixed", both, map[string]any{"id": u.ID})
	// b is non-null: its error nulls data, a's delete done all the same.
	if codes := errorCodes(t, first); len(codes) != 1 || codes[0] != graph.CodeForbidden {
		t.Fatalf("first run: %d %s", first.Status, first.Body)
	}
	if env.Client().Upload.Query().Where(upload.ID(u.ID)).ExistX(context.Background()) {
		t.Fatal("the first run did not delete the upload")
	}
	// Not stored (FORBIDDEN): run again, the delete replayed from its record.
	sameAnswer(t, first, keyed(env, deleteOnly, "mixed", both, map[string]any{"id": u.ID}), false)
	if n := deletedEvents(t, env); n != 1 {
		t.Errorf("%d deleted events, want 1", n)
	}

	// The same for an upload: the retry makes no second one.
	const uploadAndEndpoint = `mutation($file: File!) {
		a: uploadFile(file: $file) { id }
		b: createWebhookEndpoint(url: "https://example.com/hook", events: [DELETED]) { secret }
	}`
	h := http.Header{"Idempotency-Key": {"mixed-upload"}}
	before := len(env.ObjectKeys())
	for range 2 {
		res := env.UploadFileWith(h, uploadAndEndpoint, deleteOnly, "c.txt", "text/plain", []byte("c"))
		if codes := errorCodes(t, res); len(codes) != 1 || codes[0] != graph.CodeForbidden {
			t.Fatalf("upload and endpoint: %d %s", res.Status, res.Body)
		}
	}
	if n := env.Client().Upload.Query().Where(upload.Filename("c.txt")).CountX(context.Background()); n != 1 {
		t.Errorf("%d uploads after a retry, want 1", n)
	}
	if after := len(env.ObjectKeys()); after != before+1 {
		t.Errorf("%d objects after a retry, want %d", after, before+1)
	}

	// The same for a webhook endpoint: the retry makes no second one.
	_, hooksOnly, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.WebhooksManage)})
	if err != nil {
		t.Fatal(err)
	}
	const endpointAndDelete = `mutation($id: ID!) {
		a: createWebhookEndpoint(url: "https://example.com/hook", events: [DELETED]) { secret }
		b: deleteUpload(id: $id) { deletedUploadId }
	}`
	for range 2 {
		res := keyed(env, hooksOnly, "mixed-endpoint", endpointAndDelete, map[string]any{"id": u.ID})
		if codes := errorCodes(t, res); len(codes) != 1 || codes[0] != graph.CodeForbidden {
			t.Fatalf("endpoint and delete: %d %s", res.Status, res.Body)
		}
	}
	if n := env.Client().WebhookEndpoint.Query().CountX(context.Background()); n != 1 {
		t.Errorf("%d webhook endpoints after a retry, want 1", n)
	}
}
