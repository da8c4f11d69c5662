package graph_test

import (
	"context"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

const jobFields = `id dryRun status matchedCount deletedCount heldCount failedCount error createdAt startedAt finishedAt`

type jobResult struct {
	ID           string  `json:"id"`
	DryRun       bool    `json:"dryRun"`
	Status       string  `json:"status"`
	MatchedCount int     `json:"matchedCount"`
	DeletedCount int     `json:"deletedCount"`
	HeldCount    int     `json:"heldCount"`
	FailedCount  int     `json:"failedCount"`
	Error        string  `json:"error"`
	StartedAt    *string `json:"startedAt"`
	FinishedAt   *string `json:"finishedAt"`
}

func startJob(t *testing.T, env *testenv.Env, key string, where map[string]any, dryRun bool) jobResult {
	t.Helper()
	res := env.GraphQL(key, `mutation($where: UploadWhereInput!, $dryRun: Boolean) {
		startDeletionJob(where: $where, dryRun: $dryRun) { `+jobFields+` } }`,
		map[string]any{"where": where, "dryRun": dryRun})
	var data struct{ StartDeletionJob *jobResult }
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.StartDeletionJob == nil {
		t.Fatalf("startDeletionJob: status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
	}
	return *data.StartDeletionJob
}

// jobNode returns node(id:) as the caller sees it: nil when null.
func jobNode(t *testing.T, env *testenv.Env, key, id string) *jobResult {
	t.Helper()
	res := env.GraphQL(key, `query($id: ID!) { node(id: $id) { ... on DeletionJob { `+jobFields+` } } }`, map[string]any{"id": id})
	var data struct{ Node *jobResult }
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("node: status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
	}
	return data.Node
}

func runJobs(t *testing.T, env *testenv.Env) {
	t.Helper()
	if _, err := env.App.Jobs.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDeletionJobContract: startDeletionJob deletes the caller's uploads
// that match, never anyone else's; a dry run deletes nothing; the job is a
// node its owner sees and nobody else does (null, NOT_FOUND, an empty
// list: exactly as for a job that does not exist).
func TestDeletionJobContract(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	theirs := env.MustUpload(otherKey, "report.pdf", []byte("theirs"))
	report := env.MustUpload(key, "report.pdf", []byte("r"))
	notes := env.MustUpload(key, "notes.txt", []byte("n"))

	// A filter past 100 terms starts nothing.
	tooMany := make([]string, graph.MaxFilterTerms+1)
	for i := range tooMany {
		tooMany[i] = "f"
	}
	res := env.GraphQL(key, `mutation($where: UploadWhereInput!) { startDeletionJob(where: $where) { id } }`,
		map[string]any{"where": map[string]any{"filenameIn": tooMany}})
	if codes := res.Errors; len(codes) != 1 || codes[0].Code() != graph.CodeBadUserInput {
		t.Errorf("a filter of 101 terms: %+v", res.Errors)
	}
	if n := env.Client().DeletionJob.Query().CountX(context.Background()); n != 0 {
		t.Errorf("%d jobs started by a refused filter", n)
	}

	// An empty filter inside one is refused, not read as every upload.
	res = env.GraphQL(key, `mutation { startDeletionJob(where: {not: {}}) { id } }`, nil)
	if len(res.Errors) != 1 || res.Errors[0].Code() != graph.CodeBadUserInput {
		t.Errorf("where: {not: {}}: %+v %s", res.Errors, res.Data)
	}

	dry := startJob(t, env, key, map[string]any{"filenameContains": "report"}, true)
	if !dry.DryRun || dry.Status != "SUCCEEDED" || dry.MatchedCount != 1 || dry.DeletedCount != 0 || dry.FinishedAt == nil {
		t.Errorf("dry run: %+v, want SUCCEEDED at once with 1 matched and nothing deleted", dry)
	}
	runJobs(t, env)
	env.AssertIntact(theirs, report, notes)

	job := startJob(t, env, key, map[string]any{"filenameContains": "report"}, false)
	if job.Status != "QUEUED" || job.MatchedCount != 1 || job.DeletedCount != 0 || job.StartedAt != nil || !strings.HasPrefix(job.ID, "job_") {
		t.Errorf("started: %+v", job)
	}
	runJobs(t, env)
	if got := jobNode(t, env, key, job.ID); got == nil || got.Status != "SUCCEEDED" || got.DeletedCount != 1 || got.StartedAt == nil || got.FinishedAt == nil {
		t.Errorf("node after the run: %+v", got)
	}
	assertGone(t, env, report)
	env.AssertIntact(theirs, notes)

	// Someone else's job is nobody's to them.
	unknown := "job_00000000000000000000000000000000"
	for _, id := range []string{job.ID, unknown, "job_nope"} {
		if got := jobNode(t, env, otherKey, id); got != nil {
			t.Errorf("node(%s) as someone else: %+v", id, got)
		}
		res := env.GraphQL(otherKey, `mutation($id: ID!) { cancelDeletionJob(id: $id) { id } }`, map[string]any{"id": id})
		expectError(t, res, graph.CodeNotFound, graph.ErrJobNotFound.Message)
	}
	res = env.GraphQL(otherKey, `{ viewer { deletionJobs { totalCount edges { node { id } } } } }`, nil)
	if !strings.Contains(string(res.Data), `"totalCount":0`) {
		t.Errorf("someone else's deletionJobs: %s %+v", res.Data, res.Errors)
	}

	// The owner's list, newest first.
	res = env.GraphQL(key, `{ viewer { deletionJobs(first: 10) { totalCount edges { node { id status } } } } }`, nil)
	var list struct {
		Viewer struct {
			DeletionJobs struct {
				TotalCount int
				Edges      []struct{ Node jobResult }
			}
		}
	}
	if len(res.Errors) > 0 || res.Decode(&list) != nil {
		t.Fatalf("deletionJobs: %+v %s", res.Errors, res.Data)
	}
	if jl := list.Viewer.DeletionJobs; jl.TotalCount != 2 || len(jl.Edges) != 2 || jl.Edges[0].Node.ID != job.ID || jl.Edges[1].Node.ID != dry.ID {
		t.Errorf("deletionJobs: %+v, want the job then the dry run", jl)
	}

	// Canceling a finished job changes nothing.
	res = env.GraphQL(key, `mutation($id: ID!) { cancelDeletionJob(id: $id) { status deletedCount } }`, map[string]any{"id": job.ID})
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"status":"SUCCEEDED","deletedCount":1`) {
		t.Errorf("cancel a finished job: %s %+v", res.Data, res.Errors)
	}

	// A queued job canceled never runs; by someone else, it is not canceled.
	queued := startJob(t, env, key, map[string]any{}, false)
	res = env.GraphQL(otherKey, `mutation($id: ID!) { cancelDeletionJob(id: $id) { id } }`, map[string]any{"id": queued.ID})
	expectError(t, res, graph.CodeNotFound, graph.ErrJobNotFound.Message)
	if got := jobNode(t, env, key, queued.ID); got == nil || got.Status != "QUEUED" {
		t.Errorf("after someone else's cancel: %+v, want QUEUED", got)
	}
	res = env.GraphQL(key, `mutation($id: ID!) { cancelDeletionJob(id: $id) { status deletedCount finishedAt } }`, map[string]any{"id": queued.ID})
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"status":"CANCELED","deletedCount":0`) {
		t.Errorf("cancel a queued job: %s %+v", res.Data, res.Errors)
	}
	runJobs(t, env)
	env.AssertIntact(notes)
}

// TestDeletionJobScopes: starting and canceling need uploads:delete;
// reading jobs, uploads:read.
func TestDeletionJobScopes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, key := env.NewUser()
	job := startJob(t, env, key, map[string]any{}, true)
	grant := func(s scope.Scope) string {
		_, secret, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(s)})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	readOnly, deleteOnly, hooksOnly := grant(scope.UploadsRead), grant(scope.UploadsDelete), grant(scope.WebhooksManage)
	res := env.GraphQL(readOnly, `mutation { startDeletionJob(where: {}) { id } }`, nil)
	expectError(t, res, graph.CodeForbidden, graph.Forbidden(scope.UploadsDelete).Message)
	res = env.GraphQL(readOnly, `mutation($id: ID!) { cancelDeletionJob(id: $id) { id } }`, map[string]any{"id": job.ID})
	expectError(t, res, graph.CodeForbidden, graph.Forbidden(scope.UploadsDelete).Message)
	if got := jobNode(t, env, readOnly, job.ID); got == nil || got.ID != job.ID {
		t.Errorf("node with a key that may read: %+v", got)
	}
	for _, k := range []string{deleteOnly, hooksOnly} {
		res = env.GraphQL(k, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": job.ID})
		expectError(t, res, graph.CodeForbidden, graph.Forbidden(scope.UploadsRead).Message)
	}
}

// TestDeletionJobIdempotencyKey: a startDeletionJob retried with the same
// key starts no second job, whether its first answer was kept (replayed)
// or not (the job recorded as the request's effect is answered again).
func TestDeletionJobIdempotencyKey(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, key := env.NewUser()
	env.MustUpload(key, "a.txt", []byte("a"))
	const start = `mutation { startDeletionJob(where: {}) { id matchedCount } }`
	first := keyed(env, key, "start-once", start, nil)
	sameAnswer(t, first, keyed(env, key, "start-once", start, nil), true)

	// Not kept (FORBIDDEN beside it): run again, the job answered from its record.
	_, noHooks, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.UploadsDelete | scope.UploadsRead)})
	if err != nil {
		t.Fatal(err)
	}
	const mixed = `mutation {
		a: startDeletionJob(where: {}) { id }
		b: createWebhookEndpoint(url: "https://example.com/hook") { secret }
	}`
	for range 2 {
		if codes := errorCodes(t, keyed(env, noHooks, "start-mixed", mixed, nil)); len(codes) != 1 || codes[0] != graph.CodeForbidden {
			t.Fatalf("start and endpoint: %v", codes)
		}
	}
	if n := env.Client().DeletionJob.Query().Where(deletionjob.OwnerID(userID)).CountX(context.Background()); n != 2 {
		t.Errorf("%d jobs after two keyed requests retried, want 2", n)
	}
}

// TestDeletionJobsBounded: a user with jobs.MaxUnfinished jobs queued or
// running is refused another (TOO_MANY_DELETION_JOBS, nothing started)
// until one ends; a dry run is never refused; another user is not
// affected.
func TestDeletionJobsBounded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	var first jobResult
	for i := range jobs.MaxUnfinished {
		job := startJob(t, env, key, map[string]any{}, false)
		if i == 0 {
			first = job
		}
	}
	const start = `mutation { startDeletionJob(where: {}) { id } }`
	res := env.GraphQL(key, start, nil)
	expectError(t, res, graph.CodeTooManyDeletionJobs, jobs.ErrTooManyUnfinished.Error())
	if n := env.Client().DeletionJob.Query().CountX(context.Background()); n != jobs.MaxUnfinished {
		t.Errorf("%d jobs, want %d: the refused one started", n, jobs.MaxUnfinished)
	}
	startJob(t, env, key, map[string]any{}, true) // a dry run
	startJob(t, env, otherKey, map[string]any{}, false)

	if res := env.GraphQL(key, `mutation($id: ID!) { cancelDeletionJob(id: $id) { status } }`, map[string]any{"id": first.ID}); len(res.Errors) > 0 {
		t.Fatalf("cancel: %+v", res.Errors)
	}
	if res := env.GraphQL(key, start, nil); len(res.Errors) > 0 {
		t.Errorf("once one ended: %+v", res.Errors)
	}
}
