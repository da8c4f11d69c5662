package graph_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/testenv"
)

// restDeleteWithKey is a REST delete with an Idempotency-Key.
func restDeleteWithKey(env *testenv.Env, apiKey, uploadID, idempotencyKey string) testenv.Response {
	h := http.Header{"X-Api-Key": {apiKey}, "X-Upload-Id": {uploadID}, "Idempotency-Key": {idempotencyKey}}
	return env.Do(http.MethodDelete, "/delete-upload-api", h, nil)
}

// TestIdempotencyKeyRESTDeleteRacedAway: a keyed REST delete reads its
// upload, then another delete (without a key) removes it before the keyed
// one's transaction: the keyed delete deletes nothing and answers 404. Its
// retry gets that 404 back, replayed, not a 200 it never gave.
func TestIdempotencyKeyRESTDeleteRacedAway(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	var raced atomic.Bool
	graph.SetAfterRead(env.App.Resolver, func(context.Context) {
		if raced.CompareAndSwap(false, true) { // the keyed delete's read: the other delete runs now
			if res := env.DeleteREST(key, u.ID); res.Status != 200 {
				t.Errorf("the other delete: %d %s", res.Status, res.Body)
			}
		}
	})
	first := restDeleteWithKey(env, key, u.ID, "raced")
	if first.Status != 404 {
		t.Fatalf("keyed delete of an upload deleted meanwhile: %d %s, want 404", first.Status, first.Body)
	}
	again := restDeleteWithKey(env, key, u.ID, "raced")
	if again.Status != first.Status || again.Body != first.Body || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("its retry: %d %s (replayed %q), want the first answer replayed: %d %s",
			again.Status, again.Body, again.Header.Get("Idempotent-Replayed"), first.Status, first.Body)
	}
}

// TestIdempotencyKeyRESTReusedOnOtherInstance: two instances on one
// database. A keyed REST delete runs on the first; while it runs, a
// different request (a GraphQL mutation) with the same key is sent to the
// second. One of the two is refused as reused (422) and deletes nothing,
// never a 500: on PostgreSQL the REST delete took the key before it ran,
// so the mutation is refused; on SQLite its key is written only with its
// delete, so the mutation, which wrote it first, runs, and the REST delete
// is refused.
func TestIdempotencyKeyRESTReusedOnOtherInstance(t *testing.T) {
	t.Parallel()
	first := testenv.New(t, testenv.Options{})
	second := first.NewInstance()
	_, key := first.NewUser()
	u := first.MustUpload(key, "a.txt", []byte("a"))
	v := first.MustUpload(key, "b.txt", []byte("b"))

	var raced atomic.Bool
	var mutation testenv.Response
	graph.SetAfterRead(first.App.Resolver, func(context.Context) {
		if raced.CompareAndSwap(false, true) {
			mutation = keyed(second, key, "shared", deleteOne, map[string]any{"id": v.ID})
		}
	})
	rest := restDeleteWithKey(first, key, u.ID, "shared")
	switch {
	case rest.Status == 422 && mutation.Status == 200 && len(errorCodes(t, mutation)) == 0:
		if rest.Body != `{"error":"Idempotency-Key reused with a different request"}` {
			t.Errorf("the refused REST delete: %s", rest.Body)
		}
		first.AssertIntact(u)
	case rest.Status == 200 && mutation.Status == 422:
		if codes := errorCodes(t, mutation); len(codes) != 1 || codes[0] != "IDEMPOTENCY_KEY_REUSED" {
			t.Errorf("the refused mutation: %s", mutation.Body)
		}
		first.AssertIntact(v)
	default:
		t.Errorf("the REST delete: %d %s; the mutation with its key on the other instance: %d %s; want one 422, the other run",
			rest.Status, rest.Body, mutation.Status, mutation.Body)
	}
}
