package graph_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent/idempotencykey"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

// postRaw posts a GraphQL body as given (its JSON bytes untouched) with
// an Idempotency-Key.
func postRaw(env *testenv.Env, apiKey, idempotencyKey, body string) testenv.Response {
	h := http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {apiKey}, "Idempotency-Key": {idempotencyKey}}
	return env.Do(http.MethodPost, "/graphql", h, strings.NewReader(body))
}

// objectBody is what the bucket holds at key.
func objectBody(t *testing.T, env *testenv.Env, key string) string {
	t.Helper()
	out, err := env.Direct.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b)
}

// TestIdempotencyReviewUploadOtherBytes: a second upload under the same
// key, of another file that has the first's name, size and content type
// (an edited document saved again), is another request: 422, and the file
// is not silently dropped behind the first one's answer.
func TestIdempotencyReviewUploadOtherBytes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	h := http.Header{"Idempotency-Key": {"save-report"}}
	first := env.UploadFileWith(h, "", key, "report.txt", "text/plain", []byte("total: 100"))
	if first.Status != 200 || !strings.Contains(first.Body, `"status":"COMPLETED"`) {
		t.Fatalf("upload: %d %s", first.Status, first.Body)
	}
	edited := env.UploadFileWith(h, "", key, "report.txt", "text/plain", []byte("total: 999"))
	if codes := errorCodes(t, edited); edited.Status != 422 || len(codes) != 1 || codes[0] != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another file of the same name and size under the same key: %d replayed=%q %s\nwant 422 IDEMPOTENCY_KEY_REUSED: the caller is told its edited file is stored, and the bucket holds %q",
			edited.Status, edited.Header.Get("Idempotent-Replayed"), edited.Body, objectBody(t, env, env.ObjectKeys()[0]))
	}
}

// TestIdempotencyReviewReplayKeepsScope: a replay gives a credential no
// more than running the request would. A user's read-only API key (given
// to a reporting tool) that sends the key and request its dashboard used
// to register a webhook endpoint must not get the endpoint's signing
// secret back.
func TestIdempotencyReviewReplayKeepsScope(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, full := env.NewUser()
	_, readOnly, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.UploadsRead)})
	if err != nil {
		t.Fatal(err)
	}
	const create = `mutation { createWebhookEndpoint(url: "https://example.com/hook") { secret } }`
	first := keyed(env, full, "register-hook", create, nil)
	if first.Status != 200 || !strings.Contains(first.Body, `"secret":"whsec_`) {
		t.Fatalf("create endpoint: %d %s", first.Status, first.Body)
	}
	// Without the key, the read-only credential is FORBIDDEN.
	if codes := errorCodes(t, keyed(env, readOnly, "", create, nil)); len(codes) != 1 || codes[0] != graph.CodeForbidden {
		t.Fatalf("read-only credential without a key: %v, want FORBIDDEN", codes)
	}
	res := keyed(env, readOnly, "register-hook", create, nil)
	if strings.Contains(res.Body, "whsec_") {
		t.Errorf("a read-only credential got the signing secret by replay: %d Idempotent-Replayed=%q %s",
			res.Status, res.Header.Get("Idempotent-Replayed"), res.Body)
	}
}

// TestIdempotencyReviewUploadRetryAfterCrashMidStream: the instance died
// while it streamed the file to S3, after the PENDING record (and the
// key's effect) committed. The retry carries the file: it must store it,
// not answer (and keep for 24 hours) a PENDING upload that never
// completes and whose object is not in the bucket.
func TestIdempotencyReviewUploadRetryAfterCrashMidStream(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	h := http.Header{"Idempotency-Key": {"upload-crash"}}
	content := []byte("hello")
	first := env.UploadFileWith(h, "", key, "a.txt", "text/plain", content)
	if first.Status != 200 || !strings.Contains(first.Body, `"status":"COMPLETED"`) {
		t.Fatalf("upload: %d %s", first.Status, first.Body)
	}
	// Rewind to the crash: the record PENDING with no object, the key's
	// effect committed, no answer stored, the dead instance's lease over.
	ctx := context.Background()
	u := env.Client().Upload.Query().OnlyX(ctx)
	env.Client().Upload.UpdateOne(u).SetStatus(upload.StatusPENDING).ExecX(ctx)
	if err := env.Direct.Delete(ctx, env.Bucket, u.ObjectKey); err != nil {
		t.Fatal(err)
	}
	env.Client().IdempotencyKey.Update().
		Where(idempotencykey.UserID(userID), idempotencykey.Key("upload-crash")).
		SetStatus(0).SetContentType("").ClearBody().SetLockedUntil(time.Now().Add(-time.Second)).
		ExecX(ctx)

	retry := env.UploadFileWith(h, "", key, "a.txt", "text/plain", content)
	after := env.Client().Upload.GetX(ctx, u.ID)
	if after.Status != upload.StatusCOMPLETED || !env.ObjectExists(u.ObjectKey) {
		t.Errorf("retry after a crash mid-stream answered %d %s\nthe upload is %s, its object in the bucket: %v; want COMPLETED with its object",
			retry.Status, retry.Body, after.Status, env.ObjectExists(u.ObjectKey))
	}
}

// TestIdempotencyReviewStoredAnswerBounded: a keyed request may make the
// server keep its answer for IDEMPOTENCY_RETENTION, but no more than a
// request may carry (1 MiB): ten aliases of deleteUploads over one list of
// ids that name nothing are a request of under 1 MiB whose answer, echoing
// the ids ten times, is ten times that, kept a day per key.
func TestIdempotencyReviewStoredAnswerBounded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("upl_%04d_%s", i, strings.Repeat("x", 880))
	}
	var q strings.Builder
	q.WriteString("mutation($ids: [ID!]!) {")
	for i := range httpserver.MaxMutationFields {
		fmt.Fprintf(&q, " a%d: deleteUploads(ids: $ids) { notFoundIds }", i)
	}
	q.WriteString(" }")
	body, _ := json.Marshal(map[string]any{"query": q.String(), "variables": map[string]any{"ids": ids}})
	res := postRaw(env, key, "big", string(body))
	if res.Status != 200 {
		t.Fatalf("%d %.300s", res.Status, res.Body)
	}
	row := env.Client().IdempotencyKey.Query().OnlyX(context.Background())
	stored := 0
	if row.Body != nil {
		stored = len(*row.Body)
	}
	if stored > httpserver.MaxOperationBytes {
		t.Errorf("a request of %d bytes left %d bytes stored for IDEMPOTENCY_RETENTION (answer %d bytes); want at most %d",
			len(body), stored, len(res.Body), httpserver.MaxOperationBytes)
	}
}

// TestIdempotencyReviewSameRequest: what is the same request and what is
// not, as a caller sends it: variables in another key order, and a
// persisted query sent by its hash after its text, are the same request;
// a revoked credential gets nothing back.
func TestIdempotencyReviewSameRequest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()

	// Variables: JSON key order, nested too, does not make another request.
	const where = `mutation($where: UploadWhereInput!, $dry: Boolean!) { deleteUploadsWhere(where: $where, dryRun: $dry) { matchedCount } }`
	queryJSON, _ := json.Marshal(where)
	first := postRaw(env, key, "vars", `{"query":`+string(queryJSON)+`,"variables":{"where":{"sizeGT":1,"filenameHasPrefix":"a"},"dry":true}}`)
	if first.Status != 200 || !strings.Contains(first.Body, `"matchedCount":0`) {
		t.Fatalf("dry run: %d %s", first.Status, first.Body)
	}
	sameAnswer(t, first, postRaw(env, key, "vars", `{"variables":{"dry":true,"where":{"filenameHasPrefix":"a","sizeGT":1}},"query":`+string(queryJSON)+`}`), true)

	// A persisted query: the hash stands for the text it was sent with.
	u := env.MustUpload(key, "a.txt", []byte("a"))
	sum := sha256.Sum256([]byte(deleteOne))
	apq := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	full, _ := json.Marshal(map[string]any{"query": deleteOne, "variables": map[string]any{"id": u.ID}, "extensions": apq})
	hashOnly, _ := json.Marshal(map[string]any{"variables": map[string]any{"id": u.ID}, "extensions": apq})
	deleted := postRaw(env, key, "apq", string(full))
	if deleted.Status != 200 || !strings.Contains(deleted.Body, `"deletedUploadId":"`+u.ID+`"`) {
		t.Fatalf("delete by persisted query: %d %s", deleted.Status, deleted.Body)
	}
	sameAnswer(t, deleted, postRaw(env, key, "apq", string(hashOnly)), true)

	// A revoked key is no credential: no replay.
	row, revoked, err := apikey.Create(context.Background(), env.Client(), userID)
	if err != nil {
		t.Fatal(err)
	}
	v := env.MustUpload(revoked, "b.txt", []byte("b"))
	if res := keyed(env, revoked, "revoke", deleteOne, map[string]any{"id": v.ID}); !strings.Contains(res.Body, v.ID) {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if _, err := apikey.Revoke(context.Background(), env.Client(), row.ID); err != nil {
		t.Fatal(err)
	}
	res := keyed(env, revoked, "revoke", deleteOne, map[string]any{"id": v.ID})
	if res.Header.Get("Idempotent-Replayed") != "" || strings.Contains(res.Body, v.ID) {
		t.Errorf("a revoked key got the stored answer: %d %s", res.Status, res.Body)
	}
}

// TestIdempotencyReviewUploadGoneSinceCrash: the instance that stored an
// upload died before it answered; the upload was deleted since (from
// another tab, or by the janitor). The retry must answer as a caller's
// mistake would (NOT_FOUND, as restoreUpload's and the webhook mutations'
// retries do), not INTERNAL_SERVER_ERROR: that is never stored, so every
// retry of the key fails the same way, and logs an error, for a day.
func TestIdempotencyReviewUploadGoneSinceCrash(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	h := http.Header{"Idempotency-Key": {"upload-gone"}}
	first := env.UploadFileWith(h, "", key, "a.txt", "text/plain", []byte("hello"))
	if first.Status != 200 || !strings.Contains(first.Body, `"status":"COMPLETED"`) {
		t.Fatalf("upload: %d %s", first.Status, first.Body)
	}
	// Rewind to the crash: the upload stored, its answer not.
	ctx := context.Background()
	env.Client().IdempotencyKey.Update().
		Where(idempotencykey.UserID(userID), idempotencykey.Key("upload-gone")).
		SetStatus(0).SetContentType("").ClearBody().SetLockedUntil(time.Now().Add(-time.Second)).
		ExecX(ctx)
	u := env.Client().Upload.Query().OnlyX(ctx)
	if res := env.DeleteREST(key, u.ID); res.Status != 200 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	for range 2 {
		retry := env.UploadFileWith(h, "", key, "a.txt", "text/plain", []byte("hello"))
		if codes := errorCodes(t, retry); len(codes) != 1 || codes[0] == graph.CodeInternal {
			t.Errorf("retry of an upload deleted since: %d %s, want a final answer (NOT_FOUND)", retry.Status, retry.Body)
		}
	}
}
