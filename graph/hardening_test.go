package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/testenv"
)

// multipartRequest sends a GraphQL multipart request with the given
// operations and map parts and one file part per entry of files.
func multipartRequest(env *testenv.Env, apiKey, operations, mapping string, files map[string]string) testenv.Response {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("operations", operations)
	_ = mw.WriteField("map", mapping)
	for name, content := range files {
		part, _ := mw.CreateFormFile(name, name+".txt")
		_, _ = part.Write([]byte(content))
	}
	_ = mw.Close()
	h := http.Header{"Content-Type": {mw.FormDataContentType()}, "x-api-key": {apiKey}}
	return env.Do(http.MethodPost, "/graphql", h, &body)
}

func aliasedDeletes(uploads []*ent.Upload) string {
	var q strings.Builder
	q.WriteString("mutation {")
	for i, u := range uploads {
		fmt.Fprintf(&q, " d%d: deleteUpload(id: %q) { deletedUploadId }", i, u.ID)
	}
	q.WriteString(" }")
	return q.String()
}

// TestMutationFieldLimit: one request runs at most MaxMutationFields
// mutation fields, fragments counted; past that nothing runs at all.
func TestMutationFieldLimit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	var uploads []*ent.Upload
	for i := range httpserver.MaxMutationFields + 1 {
		uploads = append(uploads, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("x")))
	}

	res := env.GraphQL(key, aliasedDeletes(uploads), nil)
	if len(res.Errors) != 1 || res.Errors[0].Code() != "MUTATION_LIMIT_EXCEEDED" {
		t.Fatalf("%d aliased deletes: errors %+v, want MUTATION_LIMIT_EXCEEDED", len(uploads), res.Errors)
	}
	// The same through a fragment on Mutation.
	spread := "mutation { ...many } fragment many on Mutation " + strings.TrimPrefix(aliasedDeletes(uploads), "mutation ")
	if res := env.GraphQL(key, spread, nil); len(res.Errors) != 1 || res.Errors[0].Code() != "MUTATION_LIMIT_EXCEEDED" {
		t.Fatalf("deletes in a fragment: errors %+v, want MUTATION_LIMIT_EXCEEDED", res.Errors)
	}
	env.AssertIntact(uploads...)

	res = env.GraphQL(key, aliasedDeletes(uploads[:httpserver.MaxMutationFields]), nil)
	if len(res.Errors) != 0 {
		t.Fatalf("%d aliased deletes: %+v", httpserver.MaxMutationFields, res.Errors)
	}
	env.AssertIntact(uploads[httpserver.MaxMutationFields])
}

// TestInlinePurgeBudgetPerRequest: with S3 hanging, a request of several
// deletes spends one inline timeout in all, not one per delete; the
// objects it had no time for are purged by the background purger.
func TestInlinePurgeBudgetPerRequest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.PurgeInlineTimeout = 300 * time.Millisecond
	}})
	_, key := env.NewUser()
	var uploads []*ent.Upload
	for i := range 5 {
		uploads = append(uploads, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("x")))
	}
	var s3Calls atomic.Int64
	env.S3.Observe(func(*http.Request) { s3Calls.Add(1) })
	env.S3.SetDelay(time.Minute)
	env.S3.SetMode(faultproxy.Slow)

	res := env.GraphQL(key, aliasedDeletes(uploads), nil)
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %+v", res.Errors)
	}
	if n := s3Calls.Load(); n != 1 {
		t.Errorf("the request made %d calls to a hanging S3, each waiting out an inline timeout; want one, spending the request's budget", n)
	}

	env.S3.SetMode(faultproxy.Pass)
	env.Restart(testenv.Options{}) // with the background purger
	env.Eventually(10*time.Second, "the purger removes every object", func() bool {
		for _, u := range uploads {
			if env.ObjectExists(u.ObjectKey) {
				return false
			}
		}
		return env.PendingPurges() == 0
	})
}

// TestOneFileForTwoUploads: a file part mapped to two variables, or one
// variable passed to two fields, gives every upload the whole file.
func TestOneFileForTwoUploads(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	const content = "the same bytes twice"
	for name, c := range map[string]struct{ operations, mapping string }{
		"one variable, two fields": {
			`{"query":"mutation($f: File!) { a: uploadFile(file: $f) { id status size } b: uploadFile(file: $f) { id status size } }","variables":{"f":null}}`,
			`{"0":["variables.f"]}`,
		},
		"one part, two variables": {
			`{"query":"mutation($f: File!, $g: File!) { a: uploadFile(file: $f) { id status size } b: uploadFile(file: $g) { id status size } }","variables":{"f":null,"g":null}}`,
			`{"0":["variables.f","variables.g"]}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			res := multipartRequest(env, key, c.operations, c.mapping, map[string]string{"0": content})
			if res.Status != http.StatusOK || strings.Contains(res.Body, "FAILED") || strings.Count(res.Body, `"COMPLETED"`) != 2 {
				t.Fatalf("got %d %s, want two COMPLETED uploads", res.Status, res.Body)
			}
			if strings.Count(res.Body, fmt.Sprintf(`"size":%d`, len(content))) != 2 {
				t.Errorf("sizes: %s", res.Body)
			}
			for _, u := range env.Client().Upload.Query().AllX(t.Context()) {
				if !env.ObjectExists(u.ObjectKey) {
					t.Errorf("upload %s has no object", u.ID)
				}
			}
		})
	}
}

// TestMalformedMultipartMap: map paths that name no place in the variables
// are the caller's error, answered as such, never a panic.
func TestMalformedMultipartMap(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	single := `{"query":"mutation($f: File!) { uploadFile(file: $f) { id } }","variables":{"f":null}}`
	list := `{"query":"mutation($f: [File!]!) { uploadFile(file: $f) { id } }","variables":{"f":[null]}}`
	for name, c := range map[string]struct{ operations, mapping string }{
		"index far past a list":      {list, `{"0":["variables.f.1000000"]}`},
		"negative index":             {list, `{"0":["variables.f.-1"]}`},
		"index into an object":       {`{"query":"mutation($f: File!) { uploadFile(file: $f) { id } }","variables":{"f":{"a":null}}}`, `{"0":["variables.f.0"]}`},
		"member of null":             {single, `{"0":["variables.f.x.y"]}`},
		"member of a string":         {`{"query":"mutation($f: File!) { uploadFile(file: $f) { id } }","variables":{"f":"s"}}`, `{"0":["variables.f.x"]}`},
		"no variables at all":        {`{"query":"mutation($f: File!) { uploadFile(file: $f) { id } }"}`, `{"0":["variables.f"]}`},
		"path outside the variables": {single, `{"0":["query"]}`},
	} {
		t.Run(name, func(t *testing.T) {
			res := multipartRequest(env, key, c.operations, c.mapping, map[string]string{"0": "bytes"})
			if res.Status >= 500 || !strings.Contains(res.Body, "BAD_USER_INPUT") {
				t.Errorf("got %d %s, want a BAD_USER_INPUT error", res.Status, res.Body)
			}
		})
	}
	if n := env.Client().Upload.Query().CountX(t.Context()); n != 0 {
		t.Errorf("%d uploads were created", n)
	}
	if logs := env.Logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the service logged an error or a panic:\n%s", logs)
	}
}

// TestInputStringsAreTheCallersFault: input that no stored value can match
// (NUL, invalid UTF-8, very long strings, deep nesting) is BAD_USER_INPUT on
// every database engine, and nothing is logged as a failure of ours.
func TestInputStringsAreTheCallersFault(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	mine := env.MustUpload(key, "kept.txt", []byte("kept"))
	const list = `query($w: UploadWhereInput) { viewer { uploads(first: 5, where: $w) { totalCount } } }`
	deep := map[string]any{"filename": "x"}
	for range 20 {
		deep = map[string]any{"and": []any{deep}}
	}
	for name, c := range map[string]struct {
		query     string
		variables map[string]any
	}{
		"long filenameContains": {list, map[string]any{"w": map[string]any{"filenameContains": strings.Repeat("%_", 50_000)}}},
		"NUL in a filter":       {list, map[string]any{"w": map[string]any{"filename": "a\x00b"}}},
		"NUL in a literal":      {`{ viewer { uploads(first: 1, where: {filenameContains: "a\u0000b"}) { totalCount } } }`, nil},
		"NUL in a list":         {list, map[string]any{"w": map[string]any{"filenameIn": []any{"ok", "\x00"}}}},
		"deeply nested filter":  {list, map[string]any{"w": deep}},
		"NUL in a delete's id":  {deleteMutation, map[string]any{"id": mine.ID + "\x00"}},
	} {
		t.Run(name, func(t *testing.T) {
			res := env.GraphQL(key, c.query, c.variables)
			if len(res.Errors) != 1 || res.Errors[0].Code() != "BAD_USER_INPUT" {
				t.Errorf("status %d, errors %+v, want one BAD_USER_INPUT", res.Status, res.Errors)
			}
		})
	}
	t.Run("NUL in an uploaded filename", func(t *testing.T) {
		// RFC 2231 encoding is how a NUL gets through the part's header.
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("operations", `{"query":"mutation($f: File!) { uploadFile(file: $f) { id } }","variables":{"f":null}}`)
		_ = mw.WriteField("map", `{"0":["variables.f"]}`)
		part, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {`form-data; name="0"; filename*=UTF-8''a%00b.txt`}})
		_, _ = part.Write([]byte("x"))
		_ = mw.Close()
		res := env.Do(http.MethodPost, "/graphql", http.Header{"Content-Type": {mw.FormDataContentType()}, "x-api-key": {key}}, &body)
		if !strings.Contains(res.Body, "BAD_USER_INPUT") {
			t.Errorf("got %d %s, want BAD_USER_INPUT", res.Status, res.Body)
		}
	})
	env.AssertIntact(mine)
	if n := env.Client().Upload.Query().CountX(t.Context()); n != 1 {
		t.Errorf("%d uploads, want only the first", n)
	}
	if logs := env.Logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the service logged the caller's input as its own failure:\n%s", logs)
	}
}

// TestRacingDeletesOneWins holds two deletes of one upload after both have
// read it and before either deletes it, so that they race on every run and
// engine: exactly one answers 200, the other 404, and the object is purged
// once.
func TestRacingDeletesOneWins(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	u := env.MustUpload(key, "twice.txt", []byte("x"))
	var arrived sync.WaitGroup
	arrived.Add(2)
	graph.SetAfterRead(env.App.Resolver, func(context.Context) {
		arrived.Done()
		arrived.Wait() // both have read the upload
	})
	var s3Deletes atomic.Int64
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodDelete {
			s3Deletes.Add(1)
		}
	})
	statuses := make(chan int, 2)
	for range 2 {
		go func() { statuses <- env.DeleteREST(key, u.ID).Status }()
	}
	got := []int{<-statuses, <-statuses}
	if !(got[0] == 200 && got[1] == 404 || got[0] == 404 && got[1] == 200) {
		t.Errorf("two racing deletes answered %v, want one 200 and one 404", got)
	}
	if n := s3Deletes.Load(); n != 1 || env.ObjectExists(u.ObjectKey) || env.PendingPurges() != 0 {
		t.Errorf("S3 got %d DELETEs (want 1); object left %v; %d purges pending", n, env.ObjectExists(u.ObjectKey), env.PendingPurges())
	}
}

// TestInlinePurgeOutlivesItsCaller: a caller that hangs up while its
// delete's object is being removed does not cut the removal short: the
// object is gone, no purge is left, and no failure is counted.
func TestInlinePurgeOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	u := env.MustUpload(key, "hangup.txt", []byte("x"))
	ctx, hangUp := context.WithCancel(context.Background())
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodDelete {
			hangUp()
			time.Sleep(100 * time.Millisecond) // the server sees the hang-up before S3 answers
		}
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, env.URL+"/delete-upload-api", nil)
	req.Header.Set("x-api-key", key)
	req.Header.Set("x-upload-id", u.ID)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the request was not cancelled: %d", res.StatusCode)
	}
	// The purge row goes in the transaction that follows S3's answer, so
	// wait for the purge to settle: its row gone, or a failure counted
	// (which is the bug, reported at once rather than after the timeout).
	failed := func() bool {
		return !strings.Contains(env.Do(http.MethodGet, "/metrics", nil, nil).Body, "uploads_purge_failures_total 0")
	}
	env.Eventually(5*time.Second, "the delete finishes", func() bool {
		return failed() || env.PendingPurges() == 0
	})
	exists, _ := env.Client().Upload.Query().Where(upload.ID(u.ID)).Exist(context.Background())
	if n := env.PendingPurges(); exists || env.ObjectExists(u.ObjectKey) || n != 0 || failed() {
		t.Errorf("record left: %v; object left: %v; %d purges pending; failures counted: %v",
			exists, env.ObjectExists(u.ObjectKey), n, failed())
	}
}
