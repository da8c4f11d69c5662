package rest_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/rest"
)

const (
	invalidKey = `{"error":"The Idempotency-Key header must be 1 to 255 printable ASCII characters, bare or as a quoted string"}`
	keyReused  = `{"error":"Idempotency-Key reused with a different request"}`
	keyInUse   = `{"error":"A request with this Idempotency-Key is in progress"}`
)

// deleteWithKey is a REST delete with an Idempotency-Key header (values:
// one header each).
func deleteWithKey(env *testenv.Env, apiKey, uploadID string, keys ...string) testenv.Response {
	h := hdr(apiKey, uploadID)
	for _, k := range keys {
		h.Add("Idempotency-Key", k)
	}
	return env.Do(http.MethodDelete, rest.Path, h, nil)
}

func expectReplayed(t *testing.T, res testenv.Response, replayed bool) {
	t.Helper()
	if got := res.Header.Get("Idempotent-Replayed") == "true"; got != replayed {
		t.Errorf("Idempotent-Replayed: %q, want replayed=%v", res.Header.Get("Idempotent-Replayed"), replayed)
	}
}

// TestIdempotencyKeyRetry: a retried delete sent with its key gets the
// first answer back, byte for byte and marked replayed, where without the
// key it reads as a failure (404).
func TestIdempotencyKeyRetry(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	first := deleteWithKey(env, key, u.ID, "retry-1")
	expect(t, first, 200, success(u.ID))
	expectReplayed(t, first, false)
	// Gone inline, or by the purger if it claimed the purge first.
	env.Eventually(10*time.Second, "the object gone", func() bool { return !env.ObjectExists(u.ObjectKey) })
	for _, form := range []string{"retry-1", `"retry-1"`, ` "retry-1" `} { // bare and Structured Field string: one key
		again := deleteWithKey(env, key, u.ID, form)
		expect(t, again, 200, success(u.ID))
		expectReplayed(t, again, true)
	}
	// Without the key, the same retry is the contract's 404, as before.
	expect(t, env.DeleteREST(key, u.ID), 404, notFound)

	// A key is its user's: another user's same key is another request.
	theirs := deleteWithKey(env, otherKey, u.ID, "retry-1")
	expect(t, theirs, 404, notFound)
	expectReplayed(t, theirs, false)
	// A 404 is an answer too: replayed, even after the upload it names
	// would have been found.
	again := deleteWithKey(env, otherKey, u.ID, "retry-1")
	expect(t, again, 404, notFound)
	expectReplayed(t, again, true)

	// One delete, one event of each kind.
	env.Eventually(10*time.Second, "the purged event", func() bool {
		return env.Client().AuditEvent.Query().Where(auditevent.KindEQ(auditevent.KindPURGED)).CountX(context.Background()) == 1
	})
	if n := env.Client().AuditEvent.Query().CountX(context.Background()); n != 3 { // created, deleted, purged
		t.Errorf("%d audit events, want 3 (created, deleted, purged)", n)
	}
}

// TestIdempotencyKeyRefusals: a bad key, a key of another request and a
// key whose request still runs are refused, and nothing is done.
func TestIdempotencyKeyRefusals(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	first := env.MustUpload(key, "first.txt", []byte("1"))
	second := env.MustUpload(key, "second.txt", []byte("2"))
	expect(t, deleteWithKey(env, key, first.ID, "k"), 200, success(first.ID))

	for _, tc := range []struct {
		name   string
		keys   []string
		status int
		body   string
	}{
		{"empty", []string{""}, 400, invalidKey},
		{"empty quoted string", []string{`""`}, 400, invalidKey},
		{"256 characters", []string{strings.Repeat("k", 256)}, 400, invalidKey},
		{"a character outside ASCII", []string{"clé"}, 400, invalidKey},
		{"a control character", []string{"a\tb"}, 400, invalidKey},
		{"an unterminated string", []string{`"abc`}, 400, invalidKey},
		{"a string with more after it", []string{`"abc"d`}, 400, invalidKey},
		{"an escape the grammar lacks", []string{`"a\nb"`}, 400, invalidKey},
		{"two keys", []string{"a", "b"}, 400, invalidKey},
		{"the key of another upload's delete", []string{"k"}, 422, keyReused},
		{"the same, quoted", []string{`"k"`}, 422, keyReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := deleteWithKey(env.For(t), key, second.ID, tc.keys...)
			expect(t, res, tc.status, tc.body)
			env.For(t).AssertIntact(second)
		})
	}
	// 255 characters are a key.
	long := strings.Repeat("k", 255)

	// A request still running (on this instance or another) holds its key.
	fingerprint := idempotency.Fingerprint(http.MethodDelete, rest.Path, second.ID)
	claim, _, err := env.App.Idempotency.Begin(context.Background(), userID, scope.All, long, fingerprint)
	if err != nil || claim == nil {
		t.Fatalf("take the key: %v", err)
	}
	expect(t, deleteWithKey(env, key, second.ID, long), 409, keyInUse)
	env.AssertIntact(second)
	// Its instance hung up without an answer: the retry runs.
	if err := claim.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := deleteWithKey(env, key, second.ID, long)
	expect(t, res, 200, success(second.ID))
	expectReplayed(t, res, false)
}

// TestIdempotencyKeyAfterCrash: the instance that ran a delete died after
// the delete committed and before its answer was stored. The retry with
// the key answers what the delete did, not 404: the delete marked the key
// in its own transaction.
func TestIdempotencyKeyAfterCrash(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	ctx := context.Background()
	claim, _, err := env.App.Idempotency.Begin(ctx, userID, scope.All, "crash", idempotency.Fingerprint(http.MethodDelete, rest.Path, u.ID))
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := env.App.Resolver.DeleteOwned(idempotency.WithClaim(ctx, claim), audit.Caller(ctx), userID, []string{u.ID})
	if err != nil || len(deleted) != 1 {
		t.Fatalf("delete: %v, %v", deleted, err)
	}
	_ = claim.Release(ctx) // no answer stored, as after a crash once the lease lapsed

	res := deleteWithKey(env, key, u.ID, "crash")
	expect(t, res, 200, success(u.ID))
	expectReplayed(t, res, false) // answered now, from the recorded effect
	again := deleteWithKey(env, key, u.ID, "crash")
	expect(t, again, 200, success(u.ID))
	expectReplayed(t, again, true)

	// As the route runs it: the 200 is stored with the delete, in its
	// transaction, so the retry after the crash is the replay itself.
	v := env.MustUpload(key, "b.txt", []byte("b"))
	claim, _, err = env.App.Idempotency.Begin(ctx, userID, scope.All, "crash-2", idempotency.Fingerprint(http.MethodDelete, rest.Path, v.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := claim.Predict(idempotency.Answer{Status: 200, ContentType: "application/json", Body: rest.SuccessBody(v.ID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Resolver.DeleteOwned(idempotency.WithClaim(ctx, claim), audit.Caller(ctx), userID, []string{v.ID}); err != nil {
		t.Fatal(err)
	}
	_ = claim.Release(ctx) // the instance dies before it answers
	res = deleteWithKey(env, key, v.ID, "crash-2")
	expect(t, res, 200, success(v.ID))
	expectReplayed(t, res, true)
}

// TestIdempotencyKeyConcurrent: the same key sent many times at once
// deletes once; every answer is the delete's or 409.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))
	const callers = 8
	answers := make([]testenv.Response, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { answers[i] = deleteWithKey(env, key, u.ID, "together") })
	}
	wg.Wait()
	for _, res := range answers {
		switch res.Status {
		case 200:
			expect(t, res, 200, success(u.ID))
		case 409:
			expect(t, res, 409, keyInUse)
		default:
			t.Errorf("got %d %s, want 200 or 409", res.Status, res.Body)
		}
	}
	deletedEvents := env.Client().AuditEvent.Query().Where(auditevent.KindEQ(auditevent.KindDELETED)).CountX(context.Background())
	if deletedEvents != 1 {
		t.Errorf("%d deleted events, want 1", deletedEvents)
	}
}
