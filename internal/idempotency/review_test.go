package idempotency_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// TestIdempotencyReviewPanicFreesKey: a handler that aborts with a panic
// (rest.NewDeleteUploadHandler re-panics http.ErrAbortHandler; net/http
// recovers every panic) must not leave its key held: its claim ends, and
// the retry runs once the lease lapses, instead of 409 for as long as the
// process lives while a goroutine renews the lease of a request that is
// gone.
func TestIdempotencyReviewPanicFreesKey(t *testing.T) {
	t.Parallel()
	const lease = 100 * time.Millisecond
	s := newStore(t, idempotency.Options{Lease: lease})
	route := &idempotency.Route{
		Store:       s,
		Logger:      slog.New(slog.DiscardHandler),
		Fingerprint: func(*http.Request) (string, bool) { return "fp", true },
		Refuse:      func(w http.ResponseWriter, _ *http.Request, status int, _ error) { w.WriteHeader(status) },
		Final:       func(int, []byte) bool { return true },
	}
	aborting := route.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aborting.ServeHTTP(w, r.WithContext(viewer.NewContext(r.Context(), viewer.Viewer{UserID: "usr_1"})))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodDelete, srv.URL, nil)
	req.Header.Set(idempotency.Header, "k")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the aborted request was answered %d", res.StatusCode)
	}

	ctx := context.Background()
	deadline := time.Now().Add(50 * lease)
	for {
		claim, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp")
		if err == nil {
			_ = claim.Release(ctx)
			return
		}
		if !errors.Is(err, idempotency.ErrInUse) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key of a request that panicked is still in use %v later (lease %v): its claim is renewed for ever", 50*lease, lease)
		}
		time.Sleep(lease / 4)
	}
}

// TestIdempotencyReviewStaleClaimFenced: an instance that stalled past its
// lease (a frozen container, a stop-the-world pause, renewals stuck behind
// a busy database) is not dead: once another instance has taken the key
// over, the stale claim's effects and answer must not commit, or the
// request runs twice (a second upload, a second endpoint) and the answer
// stored is not the one the retry computed. Nothing on the row says which
// claim holds it: renewals, Record and Finish check only status = 0.
func TestIdempotencyReviewStaleClaimFenced(t *testing.T) {
	t.Parallel()
	const lease = 100 * time.Millisecond
	s := newStore(t, idempotency.Options{Lease: lease})
	ctx := context.Background()
	stale, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp")
	if err != nil {
		t.Fatal(err)
	}
	stale.Abandon() // it stalls: no renewal
	var next *idempotency.Claim
	for deadline := time.Now().Add(50 * lease); next == nil; time.Sleep(lease / 4) {
		if next, _, err = s.Begin(ctx, "usr_1", scope.All, "k", "fp"); err != nil && !errors.Is(err, idempotency.ErrInUse) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("never taken over")
		}
	}
	// The stalled instance wakes up and commits its effect, then its answer.
	tx, err := s.Client().Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendErr := idempotency.Append(idempotency.WithClaim(ctx, stale), tx, "upl_stale")
	if appendErr == nil {
		appendErr = tx.Commit()
	} else {
		_ = tx.Rollback()
	}
	finishErr := stale.Finish(ctx, idempotency.Answer{Status: 200, ContentType: "application/json", Body: []byte(`{"from":"stale"}`)})
	if appendErr == nil || finishErr == nil {
		t.Errorf("a claim taken over by another request still records its effect (%v) and stores its answer (%v)", appendErr, finishErr)
	}
	_ = next.Release(ctx)
}
