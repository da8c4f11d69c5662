package rest_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

const (
	unauthorized = `{"error":"Unauthorized"}`
	missingID    = `{"error":"Missing Upload-Id header"}`
	notFound     = `{"error":"Upload not found"}`
	deleteFailed = `{"error":"Failed to delete upload record"}`
)

func success(id string) string { return `{"message":"Upload ` + id + ` deleted successfully"}` }

// expect checks a response against the contract byte for byte.
func expect(t *testing.T, res testenv.Response, status int, body string) {
	t.Helper()
	if res.Status != status || res.Body != body {
		t.Errorf("got %d %s\nwant %d %s", res.Status, res.Body, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if res.Request.Method != http.MethodHead {
		validateOpenAPI(t, res)
	}
}

// TestContract walks the rows of the spec's error table, then success and
// repeat. Each row also checks that nothing was deleted that should not be.
func TestContract(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	victim := env.MustUpload(otherKey, "theirs.txt", []byte("not yours"))
	mine := env.MustUpload(key, "mine.txt", []byte("mine"))

	revokedKey := newRevokedKey(t, env, mine.OwnerID)
	wellFormedUnknown, _, _ := apikey.Generate()

	rows := []struct {
		name   string
		header http.Header
		status int
		body   string
	}{
		{"no credentials at all", hdr("", ""), 401, unauthorized},
		{"missing api key", hdr("", mine.ID), 401, unauthorized},
		{"blank api key", hdr("   ", mine.ID), 401, unauthorized},
		{"malformed api key (the spec's example)", hdr("abcdef1234567890", mine.ID), 401, unauthorized},
		{"unknown api key", hdr(wellFormedUnknown, mine.ID), 401, unauthorized},
		{"revoked api key", hdr(revokedKey, mine.ID), 401, unauthorized},
		{"api key in the wrong case", hdr(strings.ToUpper(key), mine.ID), 401, unauthorized},
		{"missing upload id", hdr(key, ""), 400, missingID},
		{"blank upload id", hdr(key, "   "), 400, missingID},
		{"unknown upload id", hdr(key, "upl_00000000000000000000000000000000"), 404, notFound},
		{"malformed upload id", hdr(key, "upl_XYZ"), 404, notFound},
		{"injection attempt", hdr(key, "' OR 1=1 --"), 404, notFound},
		{"very long upload id", hdr(key, "upl_"+strings.Repeat("a", 4000)), 404, notFound},
		{"user id instead of upload id", hdr(key, mine.OwnerID), 404, notFound},
		// Ids are ASCII: only ASCII whitespace around one is ignored. These
		// deleted the upload when Unicode's spaces were trimmed.
		{"own upload id followed by a no-break space", hdr(key, mine.ID+"\u00a0"), 404, notFound},
		{"own upload id after a no-break space", hdr(key, "\u00a0"+mine.ID), 404, notFound},
		{"own upload id followed by an em space", hdr(key, mine.ID+"\u2003"), 404, notFound},
		{"own upload id followed by a next line (U+0085)", hdr(key, mine.ID+"\u0085"), 404, notFound},
		{"another user's upload", hdr(key, victim.ID), 404, notFound},
		{"another user's upload, id in upper case", hdr(key, strings.ToUpper(victim.ID)), 404, notFound},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			res := env.Do(http.MethodDelete, "/delete-upload-api", row.header, nil)
			expect(t, res, row.status, row.body)
			assertUploadIntact(t, env, victim.ID, victim.ObjectKey)
			assertUploadIntact(t, env, mine.ID, mine.ObjectKey)
		})
	}

	t.Run("owner deletes: 200, record and object gone", func(t *testing.T) {
		expect(t, env.DeleteREST(key, mine.ID), 200, success(mine.ID))
		if _, err := env.Client().Upload.Get(context.Background(), mine.ID); err == nil {
			t.Error("record still present after 200")
		}
		if env.ObjectExists(mine.ObjectKey) {
			t.Error("object still in the bucket after 200")
		}
		if n := env.PendingPurges(); n != 0 {
			t.Errorf("%d purges pending after a successful inline purge", n)
		}
		assertUploadIntact(t, env, victim.ID, victim.ObjectKey)
	})
	t.Run("repeat: 404", func(t *testing.T) {
		expect(t, env.DeleteREST(key, mine.ID), 404, notFound)
	})
	t.Run("surrounding whitespace in the id is ignored", func(t *testing.T) {
		up := env.MustUpload(key, "spaces.txt", []byte("x"))
		res := env.Do(http.MethodDelete, "/delete-upload-api", hdr(key, " "+up.ID+" "), nil)
		expect(t, res, 200, success(up.ID))
	})
	t.Run("Authorization: Bearer works like x-api-key", func(t *testing.T) {
		up := env.MustUpload(key, "bearer.txt", []byte("x"))
		h := http.Header{"Authorization": {"Bearer " + key}, "X-Upload-Id": {up.ID}}
		expect(t, env.Do(http.MethodDelete, "/delete-upload-api", h, nil), 200, success(up.ID))
	})
}

func TestWrongMethod(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			res := env.Do(method, "/delete-upload-api", hdr(key, up.ID), nil)
			body := `{"error":"Method not allowed"}`
			if method == http.MethodHead {
				body = "" // HEAD responses carry no body
			}
			expect(t, res, http.StatusMethodNotAllowed, body)
			if allow := res.Header.Get("Allow"); allow != "DELETE" {
				t.Errorf("Allow = %q, want DELETE", allow)
			}
			assertUploadIntact(t, env, up.ID, up.ObjectKey)
		})
	}
}

// TestDatabaseFailure breaks the purge table so that the delete's
// transaction fails half-way: the caller gets the contract's 500 and the
// record's deletion is rolled back, so record and object both survive.
func TestDatabaseFailure(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE object_purges"); err != nil {
		t.Fatal(err)
	}
	expect(t, env.DeleteREST(key, up.ID), 500, deleteFailed)
	assertUploadIntact(t, env, up.ID, up.ObjectKey)
	if strings.Contains(env.Logs.String(), key) {
		t.Error("the API key appears in the logs")
	}
}

// TestConcurrentDeletes sends 50 deletes of one upload at once through the
// real HTTP server: exactly one wins.
func TestConcurrentDeletes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "race.txt", []byte("race"))
	const n = 50
	statuses := make(chan testenv.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			statuses <- env.DeleteREST(key, up.ID)
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for res := range statuses {
		counts[res.Status]++
		if res.Status == 200 && res.Body != success(up.ID) || res.Status == 404 && res.Body != notFound {
			t.Errorf("unexpected body %d %s", res.Status, res.Body)
		}
	}
	if counts[200] != 1 || counts[404] != n-1 {
		t.Fatalf("statuses %v, want exactly one 200 and %d 404s", counts, n-1)
	}
	if env.ObjectExists(up.ObjectKey) {
		t.Error("object still in the bucket")
	}
}

func hdr(apiKey, uploadID string) http.Header {
	h := http.Header{}
	if apiKey != "" {
		h.Set("x-api-key", apiKey)
	}
	if uploadID != "" {
		h.Set("x-upload-id", uploadID)
	}
	return h
}

func newRevokedKey(t *testing.T, env *testenv.Env, userID string) string {
	t.Helper()
	ctx := context.Background()
	k, secret, err := apikey.Create(ctx, env.Client(), userID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apikey.Revoke(ctx, env.Client(), k.ID); err != nil {
		t.Fatal(err)
	}
	return secret
}

func assertUploadIntact(t *testing.T, env *testenv.Env, uploadID, objectKey string) {
	t.Helper()
	if _, err := env.Client().Upload.Get(context.Background(), uploadID); err != nil {
		t.Errorf("upload %s: record gone (%v)", uploadID, err)
	}
	if !env.ObjectExists(objectKey) {
		t.Errorf("upload %s: object gone", uploadID)
	}
}

// TestReadOnlyDatabase: with the database read-only, a delete answers the
// contract's 500 and changes nothing.
func TestReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	env.Config.DatabaseURL = env.ReadOnlyDatabaseURL()
	env.Restart(testenv.Options{})
	expect(t, env.DeleteREST(key, up.ID), 500, deleteFailed)
	assertUploadIntact(t, env, up.ID, up.ObjectKey)
}

// TestContention: 64 callers deleting at once never see a 500. On SQLite,
// write transactions queue (BEGIN IMMEDIATE and a busy timeout) instead of
// failing; .ci/run repeats it on PostgreSQL.
func TestContention(t *testing.T) {
	// Serial: it measures (FIGURE) the deletes of its 64 callers.
	env := testenv.New(t, testenv.Options{})
	const deleters, perDeleter = 64, 5
	type job struct{ key, id string }
	var jobs []job
	for range deleters {
		_, key := env.NewUser()
		for range perDeleter {
			jobs = append(jobs, job{key, env.MustUpload(key, "c.txt", []byte("c")).ID})
		}
	}
	statuses := make(chan int, len(jobs)*2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for d := range deleters {
		wg.Go(func() {
			<-start
			for i := range perDeleter {
				j := jobs[d*perDeleter+i]
				statuses <- env.DeleteREST(j.key, j.id).Status
				// and a read between writes, as a frontend would
				statuses <- env.GraphQL(j.key, `{ viewer { uploads { totalCount } } }`, nil).Status
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	t.Logf("FIGURE database contention: %d deleters, %d deletes + %d reads in %s: statuses %v",
		deleters, len(jobs), len(jobs), elapsed.Round(time.Millisecond), counts)
	if counts[200] != 2*len(jobs) {
		t.Errorf("statuses %v, want only 200s", counts)
	}
	if keys := env.ObjectKeys(); len(keys) != 0 {
		t.Errorf("%d objects left", len(keys))
	}
}

// TestRateLimit: over the limit, a key gets 429 with Retry-After and the
// documented body; other keys are not affected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.RateLimit = 3
		c.RateLimitWindow = time.Minute
	}})
	_, key := env.NewUser()
	_, other := env.NewUser()
	for range 3 {
		expect(t, env.DeleteREST(key, "upl_00000000000000000000000000000000"), 404, notFound)
	}
	res := env.DeleteREST(key, "upl_00000000000000000000000000000000")
	expect(t, res, 429, `{"error":"Too many requests"}`)
	if res.Header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After = %q", res.Header.Get("Retry-After"))
	}
	gql := env.GraphQL(key, `{ viewer { id } }`, nil)
	if gql.Status != 429 || len(gql.Errors) != 1 || gql.Errors[0].Code() != "RATE_LIMITED" || gql.Errors[0].Message != "Too many requests" {
		t.Errorf("GraphQL over the limit: %d %+v", gql.Status, gql.Errors)
	}
	expect(t, env.DeleteREST(other, "upl_00000000000000000000000000000000"), 404, notFound)
}

// TestRateLimitWithoutValidKey: requests without a valid key (none, unknown,
// revoked) are counted per client address, on REST and GraphQL alike, so
// that guessing keys is limited too; a valid key keeps its own count.
func TestRateLimitWithoutValidKey(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.RateLimit = 3
		c.RateLimitWindow = time.Minute
	}})
	_, key := env.NewUser()
	unknown, _, _ := apikey.Generate()
	expect(t, env.DeleteREST("", "upl_00000000000000000000000000000000"), 401, unauthorized)
	expect(t, env.DeleteREST(unknown, "upl_00000000000000000000000000000000"), 401, unauthorized)
	if gql := env.GraphQL(unknown, `{ viewer { id } }`, nil); gql.Status == 429 {
		t.Fatalf("the third request without a valid key was refused: %+v", gql.Errors)
	}
	expect(t, env.DeleteREST(unknown, "upl_00000000000000000000000000000000"), 429, `{"error":"Too many requests"}`)
	expect(t, env.DeleteREST("", "upl_00000000000000000000000000000000"), 429, `{"error":"Too many requests"}`)
	if gql := env.GraphQL("", `{ viewer { id } }`, nil); gql.Status != 429 || len(gql.Errors) != 1 || gql.Errors[0].Code() != "RATE_LIMITED" {
		t.Errorf("anonymous GraphQL over the limit: %d %+v", gql.Status, gql.Errors)
	}
	expect(t, env.DeleteREST(key, "upl_00000000000000000000000000000000"), 404, notFound)
}

// TestAuditSaysREST: the audit trail records a delete made through this
// endpoint as made through REST, by the caller's key, not through GraphQL.
func TestAuditSaysREST(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	expect(t, env.DeleteREST(key, up.ID), 200, success(up.ID))
	deleted, err := env.Client().AuditEvent.Query().
		Where(auditevent.UploadID(up.ID), auditevent.KindEQ(auditevent.KindDELETED)).
		Only(context.Background())
	if err != nil {
		t.Fatalf("the delete's audit row: %v", err)
	}
	if deleted.Via != auditevent.ViaREST || !strings.HasPrefix(deleted.Actor, "key_") {
		t.Errorf("audit row says %s via %s, want the caller's key via REST", deleted.Actor, deleted.Via)
	}
}
