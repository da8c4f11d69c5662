package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

// scopeWorld is one user with every kind of thing a field can touch, and
// API keys of every scope but one, and of one scope only.
type scopeWorld struct {
	env     *testenv.Env
	userID  string
	fullKey string // every scope
	// without[s] has every scope but s; only[s] has s alone.
	without, only map[scope.Scope]string
	uploadID      string // an upload of the user
	endpointID    string // a webhook endpoint, with one delivered delivery
	deliveryID    string
	strangerKey   string
	// endpoints are endpoints as made, by id, for assertEndpointIntact.
	endpoints map[string]string
}

// anyCredential marks a field every credential may read, whatever its scopes.
const anyCredential scope.Scope = 0

// scopeRow is one field of the served schema and the scope it needs. setup
// builds a fresh fixture with the full key and returns the request, and a
// check that the fixture is unchanged (nil for reads).
type scopeRow struct {
	field   string // Type.field
	variant string
	need    scope.Scope
	setup   func(t *testing.T, w *scopeWorld) (call func(key string) testenv.GraphQLResponse, intact func(t *testing.T))
}

// read is a setup for a query that changes nothing.
func read(query string, vars func(w *scopeWorld) map[string]any) func(*testing.T, *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
	return func(t *testing.T, w *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
		var v map[string]any
		if vars != nil {
			v = vars(w)
		}
		return func(key string) testenv.GraphQLResponse { return w.env.GraphQL(key, query, v) }, nil
	}
}

// userField reads a field of the caller's User.
func userField(selection string) func(*testing.T, *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
	return read(`{ viewer { `+selection+` } }`, nil)
}

// endpointField reads a field of the caller's webhook endpoints.
func endpointField(selection string) func(*testing.T, *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
	return read(`{ viewer { webhookEndpoints { `+selection+` } } }`, nil)
}

// mutate is a setup for a mutation of one fresh thing: made returns its id
// (made with the full key), intact checks it is as it was.
func mutate(mutation string, made func(w *scopeWorld, t *testing.T) string, intact func(w *scopeWorld, t *testing.T, id string)) func(*testing.T, *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
	return func(t *testing.T, w *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
		id := made(w, t)
		call := func(key string) testenv.GraphQLResponse {
			return w.env.GraphQL(key, mutation, map[string]any{"id": id})
		}
		return call, func(t *testing.T) { intact(w, t, id) }
	}
}

var (
	uploadVars = func(w *scopeWorld) map[string]any { return map[string]any{"id": w.uploadID} }
	viewerVars = func(w *scopeWorld) map[string]any { return map[string]any{"id": w.userID} }
	// purgedVars names an upload of the user that is gone, its receipt
	// issued.
	purgedVars = func(w *scopeWorld) map[string]any {
		u := w.env.MustUpload(w.fullKey, "purged.txt", []byte("gone"))
		w.env.DeleteREST(w.fullKey, u.ID)
		// Out of the trash, if this world keeps one.
		w.env.GraphQL(w.fullKey, `mutation($id: ID!) { purgeUpload(id: $id) { purgedUploadId } }`, map[string]any{"id": u.ID})
		w.env.App.Purger.Flush()
		return map[string]any{"id": u.ID}
	}
)

// scopeRows: every field of Query, Mutation, User and WebhookEndpoint, and
// what it needs. TestEveryFieldHasAScope fails when a field has no row.
var scopeRows = []scopeRow{
	{field: "Query.viewer", need: anyCredential, setup: read(`{ viewer { id } }`, nil)},
	{field: "Query.node", variant: "of the caller", need: anyCredential, setup: read(`query($id: ID!) { node(id: $id) { id } }`, viewerVars)},
	{field: "Query.node", variant: "of an upload", need: scope.UploadsRead, setup: read(`query($id: ID!) { node(id: $id) { id } }`, uploadVars)},
	{field: "Query.nodes", variant: "of the caller", need: anyCredential, setup: read(`query($id: ID!) { nodes(ids: [$id]) { id } }`, viewerVars)},
	{field: "Query.nodes", variant: "of an upload", need: scope.UploadsRead, setup: read(`query($id: ID!) { nodes(ids: [$id]) { id } }`, uploadVars)},
	{field: "Query.upload", need: scope.UploadsRead, setup: read(`query($id: ID!) { upload(id: $id) { id } }`, uploadVars)},
	{field: "Query.deletionReceipt", need: scope.UploadsRead, setup: read(`query($id: ID!) { deletionReceipt(uploadId: $id) { jws } }`, purgedVars)},

	{field: "User.id", need: anyCredential, setup: userField("id")},
	{field: "User.email", need: anyCredential, setup: userField("email")},
	{field: "User.createdAt", need: anyCredential, setup: userField("createdAt")},
	{field: "User.updatedAt", need: anyCredential, setup: userField("updatedAt")},
	{field: "User.uploads", need: scope.UploadsRead, setup: userField("uploads(first: 5) { totalCount edges { node { id } } }")},
	{field: "User.deletedUploads", need: scope.UploadsRead, setup: userField("deletedUploads(first: 5) { edges { node { id } } }")},
	{field: "User.auditEvents", need: scope.AuditRead, setup: userField("auditEvents(first: 5) { edges { node { id kind } } }")},
	{field: "User.webhookEndpoints", need: scope.WebhooksManage, setup: userField("webhookEndpoints { id }")},
	{field: "User.holds", need: scope.UploadsRead, setup: userField("holds(first: 5) { totalCount edges { node { id uploadId active } } }")},
	{field: "User.deletionJobs", need: scope.UploadsRead, setup: userField("deletionJobs(first: 5) { edges { node { id status } } }")},
	{field: "Query.node", variant: "of a deletion job", need: scope.UploadsRead, setup: func(t *testing.T, w *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
		vars := map[string]any{"id": w.newJob(t, true)}
		return func(key string) testenv.GraphQLResponse {
			return w.env.GraphQL(key, `query($id: ID!) { node(id: $id) { id } }`, vars)
		}, nil
	}},

	// An endpoint is reached only through fields that need webhooks:manage;
	// deliveries checks it again itself.
	{field: "WebhookEndpoint.id", need: scope.WebhooksManage, setup: endpointField("id")},
	{field: "WebhookEndpoint.url", need: scope.WebhooksManage, setup: endpointField("url")},
	{field: "WebhookEndpoint.events", need: scope.WebhooksManage, setup: endpointField("events")},
	{field: "WebhookEndpoint.createdAt", need: scope.WebhooksManage, setup: endpointField("createdAt")},
	{field: "WebhookEndpoint.disabledAt", need: scope.WebhooksManage, setup: endpointField("disabledAt")},
	{field: "WebhookEndpoint.disabledReason", need: scope.WebhooksManage, setup: endpointField("disabledReason")},
	{field: "WebhookEndpoint.deliveries", need: scope.WebhooksManage, setup: endpointField("deliveries { id status payload }")},

	{field: "Mutation.uploadFile", need: scope.UploadsWrite, setup: func(t *testing.T, w *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
		uploads, objects := w.countUploads(t), w.env.ObjectKeys()
		call := func(key string) testenv.GraphQLResponse {
			return w.env.UploadFile(key, "new.txt", "text/plain", []byte("new"))
		}
		return call, func(t *testing.T) {
			if n, keys := w.countUploads(t), w.env.ObjectKeys(); n != uploads || !slices.Equal(keys, objects) {
				t.Errorf("refused uploadFile changed things: %d uploads (was %d), %d objects (was %d)", n, uploads, len(keys), len(objects))
			}
		}
	}},
	{field: "Mutation.deleteUpload", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, (*scopeWorld).newUpload, (*scopeWorld).assertUploadIntact)},
	{field: "Mutation.deleteUploads", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { deleteUploads(ids: [$id]) { deletedUploadIds notFoundIds } }`, (*scopeWorld).newUpload, (*scopeWorld).assertUploadIntact)},
	{field: "Mutation.deleteUploadsWhere", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { deleteUploadsWhere(where: {id: $id}) { deletedCount matchedCount } }`, (*scopeWorld).newUpload, (*scopeWorld).assertUploadIntact)},
	{field: "Mutation.deleteUploadsWhere", variant: "dryRun", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { deleteUploadsWhere(where: {id: $id}, dryRun: true) { matchedCount } }`, (*scopeWorld).newUpload, (*scopeWorld).assertUploadIntact)},
	{field: "Mutation.startDeletionJob", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { startDeletionJob(where: {id: $id}) { id } }`, (*scopeWorld).newUpload, (*scopeWorld).assertNoJobFor)},
	{field: "Mutation.cancelDeletionJob", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { cancelDeletionJob(id: $id) { id status } }`, func(w *scopeWorld, t *testing.T) string { return w.newJob(t, false) },
		(*scopeWorld).assertJobNotCanceled)},
	{field: "Mutation.restoreUpload", need: scope.UploadsWrite, setup: mutate(
		`mutation($id: ID!) { restoreUpload(id: $id) { id } }`, (*scopeWorld).newTrashed, (*scopeWorld).assertStillTrashed)},
	{field: "Mutation.purgeUpload", need: scope.UploadsDelete, setup: mutate(
		`mutation($id: ID!) { purgeUpload(id: $id) { purgedUploadId } }`, (*scopeWorld).newTrashed, (*scopeWorld).assertStillTrashed)},
	{field: "Mutation.placeHold", need: scope.HoldsManage, setup: mutate(
		`mutation($id: ID!) { placeHold(uploadId: $id, reason: "case 1") { id active } }`, (*scopeWorld).newUpload, (*scopeWorld).assertNotHeld)},
	{field: "Mutation.releaseHold", need: scope.HoldsManage, setup: mutate(
		`mutation($id: ID!) { releaseHold(id: $id) { id active } }`, (*scopeWorld).newHold, (*scopeWorld).assertHoldActive)},
	{field: "Mutation.createWebhookEndpoint", need: scope.WebhooksManage, setup: func(t *testing.T, w *scopeWorld) (func(string) testenv.GraphQLResponse, func(*testing.T)) {
		before := w.countEndpoints(t)
		call := func(key string) testenv.GraphQLResponse {
			return w.env.GraphQL(key, `mutation { createWebhookEndpoint(url: "http://127.0.0.1:9/new") { secret } }`, nil)
		}
		return call, func(t *testing.T) {
			if n := w.countEndpoints(t); n != before {
				t.Errorf("refused createWebhookEndpoint: %d endpoints, was %d", n, before)
			}
		}
	}},
	{field: "Mutation.deleteWebhookEndpoint", need: scope.WebhooksManage, setup: mutate(
		`mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedWebhookEndpointId } }`, (*scopeWorld).newEndpoint, (*scopeWorld).assertEndpointIntact)},
	{field: "Mutation.rotateWebhookSecret", need: scope.WebhooksManage, setup: mutate(
		`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, (*scopeWorld).newEndpoint, (*scopeWorld).assertEndpointIntact)},
	{field: "Mutation.enableWebhookEndpoint", need: scope.WebhooksManage, setup: mutate(
		`mutation($id: ID!) { enableWebhookEndpoint(id: $id) { id disabledAt } }`, (*scopeWorld).newDisabledEndpoint, (*scopeWorld).assertEndpointIntact)},
	{field: "Mutation.redeliver", need: scope.WebhooksManage, setup: mutate(
		`mutation($id: ID!) { redeliver(id: $id) { id status } }`, func(w *scopeWorld, t *testing.T) string { return w.deliveryID }, (*scopeWorld).assertDeliveryIntact)},
}

// TestEveryFieldHasAScope: every field of Query, Mutation, User and
// WebhookEndpoint in the served schema has a row in scopeRows, so a new
// field cannot ship without saying (and TestScopes proving) what it needs.
func TestEveryFieldHasAScope(t *testing.T) {
	t.Parallel()
	schema := graph.ServedSchema()
	listed := map[string]bool{}
	for _, row := range scopeRows {
		listed[row.field] = true
	}
	served := map[string]bool{}
	for _, typeName := range []string{"Query", "Mutation", "User", "WebhookEndpoint"} {
		typ := schema.Types[typeName]
		if typ == nil {
			t.Fatalf("the served schema has no type %s", typeName)
		}
		for _, field := range typ.Fields {
			if strings.HasPrefix(field.Name, "__") {
				continue
			}
			key := typeName + "." + field.Name
			served[key] = true
			if !listed[key] {
				t.Errorf("%s has no row in scopeRows: say which scope it needs (or anyCredential)", key)
			}
		}
	}
	for key := range listed {
		if !served[key] {
			t.Errorf("scopeRows lists %s, which the served schema does not have", key)
		}
	}
}

// TestScopes: for every field that needs a scope, a key with every scope
// but that one gets FORBIDDEN naming it, and nothing changes; a key with
// that scope alone succeeds. Fields for any credential work with a key of
// any single scope.
func TestScopes(t *testing.T) {
	t.Parallel()
	w := newScopeWorld(t)
	for _, row := range scopeRows {
		name := row.field
		if row.variant != "" {
			name += " " + row.variant
		}
		t.Run(name, func(t *testing.T) {
			w.env = w.env.For(t)
			if row.need == anyCredential {
				call, _ := row.setup(t, w)
				for s, key := range w.only {
					if res := call(key); len(res.Errors) != 0 {
						t.Errorf("a key of %s alone: %+v", s, res.Errors)
					}
				}
				return
			}
			call, intact := row.setup(t, w)
			res := call(w.without[row.need])
			expectError(t, res, graph.CodeForbidden, graph.Forbidden(row.need).Message)
			if !strings.Contains(res.Errors[0].Message, row.need.String()) {
				t.Errorf("FORBIDDEN does not name %s: %q", row.need, res.Errors[0].Message)
			}
			if intact != nil {
				intact(t)
			}
			if res := call(w.only[row.need]); len(res.Errors) != 0 {
				t.Errorf("a key of %s alone: %+v", row.need, res.Errors)
			}
		})
	}
}

// TestForbiddenBeforeLookup: a key without the scope gets the same
// FORBIDDEN whatever the id names (the caller's thing, another user's,
// nothing, or nothing well-formed), so a missing scope reveals nothing.
func TestForbiddenBeforeLookup(t *testing.T) {
	t.Parallel()
	w := newScopeWorld(t)
	theirs := w.env.MustUpload(w.strangerKey, "theirs.txt", []byte("theirs"))
	mine := w.newUpload(t)
	ids := map[string]string{
		"the caller's upload":         mine,
		"another user's upload":       theirs.ID,
		"an id that does not exist":   "upl_00000000000000000000000000000000",
		"a malformed id":              "not-an-id",
		"a blank id":                  " ",
		"the caller's endpoint":       w.endpointID,
		"the caller's delivery":       w.deliveryID,
		"another prefix that is none": "whe_00000000000000000000000000000000",
	}
	operations := map[string]scope.Scope{
		`mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`:                   scope.UploadsDelete,
		`mutation($id: ID!) { deleteUploads(ids: [$id]) { deletedUploadIds } }`:              scope.UploadsDelete,
		`mutation($id: ID!) { deleteUploadsWhere(where: {id: $id}) { deletedCount } }`:       scope.UploadsDelete,
		`mutation($id: ID!) { purgeUpload(id: $id) { purgedUploadId } }`:                     scope.UploadsDelete,
		`mutation($id: ID!) { restoreUpload(id: $id) { id } }`:                               scope.UploadsWrite,
		`query($id: ID!) { upload(id: $id) { id } }`:                                         scope.UploadsRead,
		`mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedWebhookEndpointId } }`: scope.WebhooksManage,
		`mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`:                     scope.WebhooksManage,
		`mutation($id: ID!) { enableWebhookEndpoint(id: $id) { id } }`:                       scope.WebhooksManage,
		`mutation($id: ID!) { redeliver(id: $id) { id } }`:                                   scope.WebhooksManage,
	}
	for operation, need := range operations {
		var first string
		for what, id := range ids {
			res := w.env.GraphQL(w.without[need], operation, map[string]any{"id": id})
			expectError(t, res, graph.CodeForbidden, graph.Forbidden(need).Message)
			answer, _ := json.Marshal(res)
			if first == "" {
				first = string(answer)
			} else if string(answer) != first {
				t.Errorf("%s of %s answers %s, unlike %s", operation, what, answer, first)
			}
		}
	}
	w.env.AssertIntact(theirs)
	w.assertUploadIntact(t, mine)
}

func newScopeWorld(t *testing.T) *scopeWorld {
	t.Helper()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.DeleteRetention = time.Hour
		c.WebhookAllowHTTP = true
		c.WebhookAllowPrivateNetworks = true
	}})
	userID, fullKey := env.NewUser()
	_, strangerKey := env.NewUser()
	w := &scopeWorld{env: env, userID: userID, fullKey: fullKey, strangerKey: strangerKey,
		without: map[scope.Scope]string{}, only: map[scope.Scope]string{}, endpoints: map[string]string{}}
	for _, name := range scope.Known() {
		s, _ := scope.Lookup(name)
		w.without[s] = w.newKey(t, slices.DeleteFunc(scope.Known(), func(n string) bool { return n == name }))
		w.only[s] = w.newKey(t, []string{name})
	}

	// An endpoint that answers 200, with one delivery delivered.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)
	res := env.GraphQL(fullKey, `mutation($url: String!) { createWebhookEndpoint(url: $url) { endpoint { id } } }`,
		map[string]any{"url": receiver.URL + "/hook"})
	var created struct {
		CreateWebhookEndpoint struct{ Endpoint struct{ ID string } }
	}
	if len(res.Errors) != 0 || res.Decode(&created) != nil {
		t.Fatalf("create endpoint: %+v", res.Errors)
	}
	w.endpointID = created.CreateWebhookEndpoint.Endpoint.ID
	w.uploadID = w.newUpload(t)
	ctx := context.Background()
	env.Eventually(10*time.Second, "the first delivery", func() bool {
		return env.Client().WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusDELIVERED)).ExistX(ctx)
	})
	w.deliveryID = env.Client().WebhookDelivery.Query().FirstX(ctx).MessageID
	return w
}

// newKey makes an API key of userID with exactly scopes.
func (w *scopeWorld) newKey(t *testing.T, scopes []string) string {
	t.Helper()
	secret, prefix, digest := apikey.Generate()
	w.env.Client().APIKey.Create().SetOwnerID(w.userID).SetPrefix(prefix).SetDigest(digest).
		SetScopes(scopes).ExecX(context.Background())
	return secret
}

func (w *scopeWorld) newUpload(t *testing.T) string {
	return w.env.MustUpload(w.fullKey, "mine.txt", []byte("mine")).ID
}

func (w *scopeWorld) countUploads(t *testing.T) int {
	return w.env.Client().Upload.Query().Where(upload.OwnerID(w.userID)).CountX(context.Background())
}

func (w *scopeWorld) assertUploadIntact(t *testing.T, id string) {
	t.Helper()
	u, err := w.env.Client().Upload.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("upload %s after a refused mutation: %v", id, err)
	}
	w.env.AssertIntact(u)
}

// newJob is a deletion job of the caller's matching nothing: a dry run
// (SUCCEEDED at once) or a job the runner takes.
func (w *scopeWorld) newJob(t *testing.T, dryRun bool) string {
	t.Helper()
	job, err := w.env.App.Jobs.Start(context.Background(), jobs.Filter{
		OwnerID: w.userID, Where: &ent.UploadWhereInput{ID: ptr("upl_00000000000000000000000000000000")}, DryRun: dryRun, Actor: audit.CLI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return job.ID
}

func ptr[T any](v T) *T { return &v }

// assertNoJobFor checks that the upload is intact and no job was started.
func (w *scopeWorld) assertNoJobFor(t *testing.T, uploadID string) {
	t.Helper()
	w.assertUploadIntact(t, uploadID)
	for _, job := range w.env.Client().DeletionJob.Query().AllX(context.Background()) {
		if strings.Contains(job.Filter, uploadID) {
			t.Errorf("a refused startDeletionJob started %s", job.ID)
		}
	}
}

func (w *scopeWorld) assertJobNotCanceled(t *testing.T, jobID string) {
	t.Helper()
	if job := w.env.Client().DeletionJob.GetX(context.Background(), jobID); job.Status == deletionjob.StatusCANCELED {
		t.Errorf("a refused cancelDeletionJob canceled %s", jobID)
	}
}

// newTrashed is one of the caller's uploads, deleted into the trash.
func (w *scopeWorld) newTrashed(t *testing.T) string {
	t.Helper()
	id := w.newUpload(t)
	if res := w.env.GraphQL(w.fullKey, deleteMutation, map[string]any{"id": id}); len(res.Errors) != 0 {
		t.Fatalf("delete into the trash: %+v", res.Errors)
	}
	return id
}

func (w *scopeWorld) assertStillTrashed(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	d, err := w.env.Client().DeletedUpload.Query().Where(deletedupload.ID(id)).Only(ctx)
	if err != nil {
		t.Fatalf("trash entry %s after a refused mutation: %v", id, err)
	}
	if w.env.Client().Upload.Query().Where(upload.ID(id)).ExistX(ctx) {
		t.Errorf("upload %s was restored by a refused mutation", id)
	}
	if !w.env.ObjectExists(d.ObjectKey) {
		t.Errorf("the object of trashed upload %s is gone after a refused mutation", id)
	}
}

func (w *scopeWorld) countEndpoints(t *testing.T) int {
	return w.env.Client().WebhookEndpoint.Query().Where(webhookendpoint.OwnerID(w.userID)).CountX(context.Background())
}

// newEndpoint is a new endpoint of the caller; intact compares it with
// what it was.
func (w *scopeWorld) newEndpoint(t *testing.T) string {
	t.Helper()
	res := w.env.GraphQL(w.fullKey, `mutation { createWebhookEndpoint(url: "http://127.0.0.1:9/other", events: [PURGED]) { endpoint { id } } }`, nil)
	var created struct {
		CreateWebhookEndpoint struct{ Endpoint struct{ ID string } }
	}
	if len(res.Errors) != 0 || res.Decode(&created) != nil {
		t.Fatalf("create endpoint: %+v", res.Errors)
	}
	id := created.CreateWebhookEndpoint.Endpoint.ID
	w.endpoints[id] = w.endpointRow(t, id)
	return id
}

func (w *scopeWorld) newDisabledEndpoint(t *testing.T) string {
	t.Helper()
	id := w.newEndpoint(t)
	w.env.Client().WebhookEndpoint.UpdateOneID(id).SetDisabledAt(time.Now()).SetDisabledReason("failing").ExecX(context.Background())
	w.endpoints[id] = w.endpointRow(t, id)
	return id
}

// endpointRow is what an endpoint is: its URL, events, sealed secret and state.
func (w *scopeWorld) endpointRow(t *testing.T, id string) string {
	t.Helper()
	e, err := w.env.Client().WebhookEndpoint.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("endpoint %s: %v", id, err)
	}
	b, _ := json.Marshal([]any{e.URL, e.Events, e.Secret, e.DisabledAt, e.DisabledReason})
	return string(b)
}

func (w *scopeWorld) assertEndpointIntact(t *testing.T, id string) {
	t.Helper()
	if got := w.endpointRow(t, id); got != w.endpoints[id] {
		t.Errorf("endpoint %s changed by a refused mutation", id)
	}
}

func (w *scopeWorld) assertDeliveryIntact(t *testing.T, id string) {
	t.Helper()
	d := w.env.Client().WebhookDelivery.Query().Where(webhookdelivery.MessageID(id)).OnlyX(context.Background())
	if d.Status != webhookdelivery.StatusDELIVERED || d.DeliveredAt == nil {
		t.Errorf("a refused redeliver changed the delivery: %s", d.Status)
	}
}
