package rest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestIdempotencyReviewREST: a keyed delete while S3 is down is the
// delete's 200 (its purge waits), kept and replayed once S3 is back; a
// credential that may not delete is 401 and not kept, so the same key with
// one that may runs; /metrics counts what happened.
func TestIdempotencyReviewREST(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	env.S3.SetMode(faultproxy.Refuse)
	first := deleteWithKey(env, key, u.ID, "s3-down")
	expect(t, first, 200, success(u.ID))
	env.S3.SetMode(faultproxy.Pass)
	again := deleteWithKey(env, key, u.ID, "s3-down")
	expect(t, again, 200, success(u.ID))
	expectReplayed(t, again, true)
	env.Eventually(10*time.Second, "the purge after S3 came back", func() bool { return !env.ObjectExists(u.ObjectKey) })

	_, readOnly, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.UploadsRead)})
	if err != nil {
		t.Fatal(err)
	}
	v := env.MustUpload(key, "b.txt", []byte("b"))
	expect(t, deleteWithKey(env, readOnly, v.ID, "scoped"), 401, `{"error":"Unauthorized"}`)
	env.AssertIntact(v)
	res := deleteWithKey(env, key, v.ID, "scoped")
	expect(t, res, 200, success(v.ID))
	expectReplayed(t, res, false)

	metrics := env.Do(http.MethodGet, "/metrics", http.Header{}, nil)
	for _, want := range []string{
		`uploads_idempotency_requests_total{outcome="claimed"} 3`,
		`uploads_idempotency_requests_total{outcome="replayed"} 1`,
		`uploads_idempotency_requests_total{outcome="stored"} 2`,
		`uploads_idempotency_requests_total{outcome="released"} 1`,
	} {
		if !strings.Contains(metrics.Body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
