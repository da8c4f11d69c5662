package graph_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// statements records, as "VERB table", the statements a SQLite file runs
// while recording is on.
type statements struct {
	mu        sync.Mutex
	recording bool
	seen      []string
}

var tableOf = regexp.MustCompile("(?is)^\\s*(?:SELECT .*? FROM|INSERT INTO|UPDATE|DELETE FROM)\\s+[`\"]?(\\w+)")

func (s *statements) see(statement string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.recording {
		return
	}
	verb, _, _ := strings.Cut(strings.TrimSpace(statement), " ")
	verb = strings.ToUpper(verb)
	if verb == "PRAGMA" {
		return // the checkpointer's, shortly after a commit: the database's upkeep, not a delete's work
	}
	if m := tableOf.FindStringSubmatch(statement); m != nil {
		verb += " " + m[1]
	}
	s.seen = append(s.seen, verb)
}

func (s *statements) record(on bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recording = on
	seen := s.seen
	s.seen = nil
	return seen
}

// deleting records the statements of a delete (200), up to its first
// commit (request) and after it, once its purge is over (background).
func (s *statements) deleting(t *testing.T, env *testenv.Env, del func() testenv.Response) (request, background []string) {
	t.Helper()
	s.record(true)
	if res := del(); res.Status != 200 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.App.Purger.Flush()
	seen := s.record(false)
	commit := slices.Index(seen, "COMMIT")
	if commit < 0 {
		t.Fatalf("no transaction committed: %v", seen)
	}
	return seen[:commit+1], seen[commit+1:]
}

// observedUpload starts a service on SQLite whose statements s records
// while recording is on, with a user (key) and one upload a, the key used
// once already (its first use is recorded apart).
func observedUpload(t *testing.T) (s *statements, env *testenv.Env, key string, a *ent.Upload) {
	s = &statements{}
	env = testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(cfg *config.Config) {
		cfg.DatabaseURL = "" // the SQLite file in DataDir, whatever TEST_DATABASE_URL says
		t.Cleanup(database.Observe(cfg.SQLitePath(), s.see))
	}})
	_, key = env.NewUser()
	a = env.MustUpload(key, "a.txt", []byte("a"))
	env.GraphQL(key, `{ viewer { id } }`, nil)
	return s, env, key, a
}

// TestDeleteStatements: with the default settings (no restore window, no
// webhook endpoint) a REST delete runs the statements its promises need
// and no others, in one transaction: the key's lookup, the ownership read
// that keeps a 404 off the write lock, then the record's delete, its purge
// note and its audit event, chained: the owner's chain head moved on from
// the one this process last wrote (the upload's "created" event), which
// locks it (one statement more since issue 25; two before the guess). No
// trash entry, no read of the owner's
// endpoints, no check that another record shares the object. Once the
// object is gone, one background transaction ends the purge, records its
// "purged" event and issues its deletion receipt: who asked for the delete
// rides on the purge note, and the note's DELETE says the owner has no
// endpoint, so neither the audit trail nor the endpoints are read (two
// statements fewer since issue 22's last cut). (SQLite: the engine the
// statements are counted on.)
func TestDeleteStatements(t *testing.T) {
	t.Parallel()
	s, env, key, a := observedUpload(t)

	request, background := s.deleting(t, env, func() testenv.Response { return env.DeleteREST(key, a.ID) })
	want := []string{
		"SELECT api_keys", "SELECT uploads",
		"BEGIN", "DELETE uploads", "INSERT object_purges", "UPDATE audit_chains", "INSERT audit_events", "COMMIT",
	}
	if !slices.Equal(request, want) {
		t.Errorf("the delete ran %d statements:\n  %s\nwant %d:\n  %s", len(request), strings.Join(request, "\n  "), len(want), strings.Join(want, "\n  "))
	}
	wantAfter := []string{
		"BEGIN", "DELETE object_purges", "DELETE deleted_uploads",
		"UPDATE audit_chains", "INSERT audit_events", // the chained "purged" event
		"INSERT deletion_receipts", // the receipt, naming who asked for the delete as the purge note carries it
		"COMMIT",
	}
	if !slices.Equal(background, wantAfter) {
		t.Errorf("after the object was gone, %d statements:\n  %s\nwant %d:\n  %s", len(background), strings.Join(background, "\n  "), len(wantAfter), strings.Join(wantAfter, "\n  "))
	}
	t.Logf("delete: %d statements on the request's path, %d after it", len(request), len(background))
}

// TestKeyedDeleteStatements: on SQLite a REST delete sent with an
// Idempotency-Key no request has used writes the key only with the
// delete, in its one transaction (its answer included): one read more than
// a delete without a key, no transaction more. Its retry replays the
// stored answer and writes nothing.
func TestKeyedDeleteStatements(t *testing.T) {
	t.Parallel()
	s, env, key, a := observedUpload(t)
	keyed := func() testenv.Response {
		return env.Do(http.MethodDelete, "/delete-upload-api", http.Header{
			"X-Api-Key": {key}, "X-Upload-Id": {a.ID}, "Idempotency-Key": {"statements"},
		}, nil)
	}

	request, _ := s.deleting(t, env, keyed)
	want := []string{
		"SELECT api_keys", "SELECT idempotency_keys", "SELECT uploads",
		"BEGIN", "DELETE uploads", "INSERT object_purges", "INSERT idempotency_keys", "UPDATE audit_chains", "INSERT audit_events", "COMMIT",
	}
	if !slices.Equal(request, want) {
		t.Errorf("the keyed delete ran %d statements:\n  %s\nwant %d:\n  %s", len(request), strings.Join(request, "\n  "), len(want), strings.Join(want, "\n  "))
	}

	s.record(true)
	res := keyed()
	retry := s.record(false)
	if res.Status != 200 || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s, Idempotent-Replayed %q", res.Status, res.Body, res.Header.Get("Idempotent-Replayed"))
	}
	if slices.Contains(retry, "BEGIN") {
		t.Errorf("the replay wrote: %s", strings.Join(retry, "\n  "))
	}
}
