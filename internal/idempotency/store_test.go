package idempotency_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent/idempotencykey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/webhook"
)

func TestKeyFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values []string
		key    string
		sent   bool
		valid  bool
	}{
		{nil, "", false, true},
		{[]string{"abc"}, "abc", true, true},
		{[]string{`"abc"`}, "abc", true, true},
		{[]string{` "abc" `}, "abc", true, true},
		{[]string{`"a\"b\\c"`}, `a"b\c`, true, true},
		{[]string{"with inner spaces"}, "with inner spaces", true, true},
		{[]string{strings.Repeat("k", 255)}, strings.Repeat("k", 255), true, true},
		{[]string{strings.Repeat("k", 256)}, "", true, false},
		{[]string{`"` + strings.Repeat("k", 256) + `"`}, "", true, false},
		{[]string{""}, "", true, false},
		{[]string{`""`}, "", true, false},
		{[]string{`"abc`}, "", true, false},
		{[]string{`"ab"c`}, "", true, false},
		{[]string{`"a\b"`}, "", true, false},
		{[]string{"é"}, "", true, false},
		{[]string{"a\tb"}, "", true, false},
		{[]string{"a", "b"}, "", true, false},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add(idempotency.Header, v)
		}
		key, sent, err := idempotency.KeyFrom(h)
		if key != tc.key || sent != tc.sent || (err == nil) != tc.valid {
			t.Errorf("%q: got %q, %v, %v; want %q, %v, valid %v", tc.values, key, sent, err, tc.key, tc.sent, tc.valid)
		}
	}
}

func newStore(t *testing.T, opts idempotency.Options) *idempotency.Store {
	t.Helper()
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	sealer, err := webhook.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return idempotency.New(testenv.OpenDatabase(t), func() (idempotency.Sealer, error) { return sealer, nil }, opts)
}

// TestDeadInstanceLease: a request whose instance died holds its key until
// its lease lapses, then the next retry runs it, with the effects the dead
// one committed; a live instance's renewals keep its key.
func TestDeadInstanceLease(t *testing.T) {
	t.Parallel()
	s := newStore(t, idempotency.Options{Lease: 300 * time.Millisecond})
	ctx := context.Background()
	dead, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.Client().Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := idempotency.Append(idempotency.WithClaim(ctx, dead), tx, "upl_1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	dead.Abandon() // it stops renewing, as a killed process does
	if _, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp"); !errors.Is(err, idempotency.ErrInUse) {
		t.Fatalf("within the lease: %v, want ErrInUse", err)
	}
	var next *idempotency.Claim
	deadline := time.Now().Add(10 * time.Second)
	for next == nil && time.Now().Before(deadline) {
		next, _, err = s.Begin(ctx, "usr_1", scope.All, "k", "fp")
		if err != nil && !errors.Is(err, idempotency.ErrInUse) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if next == nil {
		t.Fatal("the dead instance's key was never free")
	}
	var deleted []string
	if !idempotency.Recorded(idempotency.WithClaim(ctx, next), &deleted) || len(deleted) != 1 || deleted[0] != "upl_1" {
		t.Fatalf("effects after the takeover: %v", deleted)
	}
	// next renews its lease: it is not taken while it runs, several
	// leases long.
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		if _, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp"); !errors.Is(err, idempotency.ErrInUse) {
			t.Fatalf("while its instance lives: %v, want ErrInUse", err)
		}
	}
	if err := next.Finish(ctx, idempotency.Answer{Status: 200, ContentType: "application/json", Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	_, answer, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp")
	if err != nil || answer == nil || answer.Status != 200 || string(answer.Body) != `{"ok":true}` {
		t.Fatalf("replay: %+v, %v", answer, err)
	}
}

// TestStoredAnswersSealedAndPruned: an answer (which may carry a webhook
// secret) is not in the database in plain text; past its retention the
// key names a new request, and the janitor's prune removes it.
func TestStoredAnswersSealedAndPruned(t *testing.T) {
	t.Parallel()
	s := newStore(t, idempotency.Options{Retention: time.Hour})
	ctx := context.Background()
	secret := []byte(`{"secret":"whsec_c2VjcmV0"}`)
	c, _, err := s.Begin(ctx, "usr_1", scope.All, "k", "fp")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(ctx, idempotency.Answer{Status: 200, ContentType: "application/json", Body: secret}); err != nil {
		t.Fatal(err)
	}
	row := s.Client().IdempotencyKey.Query().OnlyX(ctx)
	if row.Body == nil || bytes.Contains(*row.Body, []byte("whsec_")) {
		t.Fatalf("stored body %q holds the secret in plain text", *row.Body)
	}
	// Another user's same key is theirs.
	if c, _, err := s.Begin(ctx, "usr_2", scope.All, "k", "other"); err != nil || c == nil {
		t.Fatalf("another user's key: %v", err)
	} else {
		_ = c.Release(ctx)
	}
	// Past the retention: a new request, even another one.
	age := func() {
		query, args := sql.Dialect(s.Client().Driver().Dialect()).Update(idempotencykey.Table).
			Set(idempotencykey.FieldCreatedAt, time.Now().Add(-2*time.Hour)).Where(sql.EQ(idempotencykey.FieldUserID, "usr_1")).Query()
		if _, err := s.Client().ExecContext(ctx, query, args...); err != nil {
			t.Fatal(err)
		}
	}
	age()
	if c, answer, err := s.Begin(ctx, "usr_1", scope.All, "k", "another request"); err != nil || c == nil || answer != nil {
		t.Fatalf("after the retention: %v, %v", answer, err)
	} else {
		_ = c.Release(ctx)
	}
	age()
	if n, err := s.Prune(ctx, time.Now().Add(-s.Retention())); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1", n, err)
	}
	if n := s.Client().IdempotencyKey.Query().CountX(ctx); n != 1 {
		t.Errorf("%d keys, want 1 (usr_2's)", n)
	}
}

// TestDeferredClaimHeld: a key taken by BeginDeferred (on SQLite, held in
// the process until its effect writes it) is in use for the same request
// and reused for another, as a key with a row is; once its answer is
// stored, the same request replays it and another is refused.
func TestDeferredClaimHeld(t *testing.T) {
	t.Parallel()
	store := newStore(t, idempotency.Options{})
	ctx := context.Background()
	ok := idempotency.Answer{Status: 200, ContentType: "application/json", Body: []byte(`{"message":"done"}`)}
	claim, _, err := store.BeginDeferred(ctx, "usr_1", scope.All, "k", "delete a", ok)
	if err != nil || claim == nil {
		t.Fatalf("BeginDeferred: %v, %v", claim, err)
	}
	if _, _, err := store.BeginDeferred(ctx, "usr_1", scope.All, "k", "delete a", ok); !errors.Is(err, idempotency.ErrInUse) {
		t.Errorf("the same request while it runs: %v, want ErrInUse", err)
	}
	if _, _, err := store.Begin(ctx, "usr_1", scope.All, "k", "delete a"); !errors.Is(err, idempotency.ErrInUse) {
		t.Errorf("the same request through Begin while it runs: %v, want ErrInUse", err)
	}
	if _, _, err := store.Begin(ctx, "usr_1", scope.All, "k", "mutation b"); !errors.Is(err, idempotency.ErrReused) {
		t.Errorf("another request while it runs: %v, want ErrReused", err)
	}
	other, _, err := store.BeginDeferred(ctx, "usr_2", scope.All, "k", "delete a", ok)
	if err != nil || other == nil {
		t.Errorf("another user's key of the same name: %v, %v", other, err)
	} else {
		_ = other.Release(ctx)
	}

	if err := claim.Finish(ctx, idempotency.Answer{Status: 404, ContentType: "application/json", Body: []byte(`{"error":"no"}`)}); err != nil {
		t.Fatal(err)
	}
	_, answer, err := store.BeginDeferred(ctx, "usr_1", scope.All, "k", "delete a", ok)
	if err != nil || answer == nil || answer.Status != 404 || string(answer.Body) != `{"error":"no"}` {
		t.Errorf("the same request once answered: %+v, %v; want the stored 404", answer, err)
	}
	if _, _, err := store.BeginDeferred(ctx, "usr_1", scope.All, "k", "delete b", ok); !errors.Is(err, idempotency.ErrReused) {
		t.Errorf("another request once answered: %v, want ErrReused", err)
	}
}

// TestDeferredClaimSuperseded: two processes on one SQLite file. A key
// taken by BeginDeferred in one, which the other writes first, is given
// as Begin would have given it had that row been there first: the same
// request's answer, replayed; another request's key refused as reused;
// the same request still running there refused as in use; an answer
// stored for a wider credential refused as narrower.
func TestDeferredClaimSuperseded(t *testing.T) {
	if os.Getenv("TEST_DATABASE_URL") != "" {
		t.Skip("a deferred claim is SQLite's: on PostgreSQL BeginDeferred is Begin")
	}
	t.Parallel()
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	sealer, err := webhook.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	url := database.SQLiteURL(filepath.Join(t.TempDir(), "shared.db"))
	counts := &outcomes{n: map[string]int{}}
	process := func() *idempotency.Store {
		client, err := database.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		return idempotency.New(client, func() (idempotency.Sealer, error) { return sealer, nil }, idempotency.Options{Metrics: counts})
	}
	here, there := process(), process()
	ctx := context.Background()
	ok := idempotency.Answer{Status: 200, ContentType: "application/json", Body: []byte(`{"message":"done"}`)}
	notFound := idempotency.Answer{Status: 404, ContentType: "application/json", Body: []byte(`{"error":"no"}`)}
	narrower := scope.Set(scope.UploadsRead | scope.UploadsDelete)
	for _, tc := range []struct {
		name   string
		scopes scope.Set // the deferred claim's credential
		first  func(t *testing.T, key string)
		replay bool
		want   error
	}{
		{"the same request, answered there", scope.All, func(t *testing.T, key string) {
			c, _, err := there.BeginDeferred(ctx, "usr_1", scope.All, key, "delete a", ok)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Finish(ctx, ok); err != nil {
				t.Fatal(err)
			}
		}, true, nil},
		{"another request, running there", scope.All, func(t *testing.T, key string) {
			c, _, err := there.Begin(ctx, "usr_1", scope.All, key, "mutation b")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Abandon)
		}, false, idempotency.ErrReused},
		{"the same request, running there", scope.All, func(t *testing.T, key string) {
			c, _, err := there.Begin(ctx, "usr_1", scope.All, key, "delete a")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Abandon)
		}, false, idempotency.ErrInUse},
		{"the same request, answered there for a wider credential", narrower, func(t *testing.T, key string) {
			c, _, err := there.BeginDeferred(ctx, "usr_1", scope.All, key, "delete a", ok)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Finish(ctx, ok); err != nil {
				t.Fatal(err)
			}
		}, false, idempotency.ErrNarrower},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.name
			claim, _, err := here.BeginDeferred(ctx, "usr_1", tc.scopes, key, "delete a", ok)
			if err != nil || claim == nil {
				t.Fatalf("BeginDeferred: %v, %v", claim, err)
			}
			tc.first(t, key)
			// Here the upload was gone by then: 404, whose row is refused.
			if err := claim.Finish(ctx, notFound); err != nil {
				t.Fatal(err)
			}
			answer, refused := claim.Superseded()
			switch {
			case tc.replay && (answer == nil || answer.Status != 200 || !bytes.Equal(answer.Body, ok.Body)):
				t.Errorf("given %+v, %v; want the 200 stored there", answer, refused)
			case !tc.replay && (answer != nil || !errors.Is(refused, tc.want)):
				t.Errorf("given %+v, %v; want %v", answer, refused, tc.want)
			}
		})
	}
	// Every claim ends stored or released, superseded ones included
	// (those of "running there" are never ended).
	if c := counts.get(); c["claimed"]-2 != c["stored"]+c["released"] {
		t.Errorf("outcomes %v: %d claims (2 still running), %d stored and %d released", c, c["claimed"], c["stored"], c["released"])
	}
}

// outcomes counts what became of keyed requests.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) Idempotency(outcome string) {
	o.mu.Lock()
	o.n[outcome]++
	o.mu.Unlock()
}

func (o *outcomes) IdempotencyPruned(int) {}

func (o *outcomes) get() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.n)
}
