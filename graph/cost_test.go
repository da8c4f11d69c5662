package graph_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/gqllimit"
	"github.com/safedelete/uploads/internal/httpserver"
	idgen "github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/webhook"
)

// aliased repeats field n times under aliases a0, a1, ...
func aliased(n int, field string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	return b.String()
}

// manyOf returns n values made by value.
func manyOf(n int, value func(i int) any) []any {
	list := make([]any, n)
	for i := range list {
		list[i] = value(i)
	}
	return list
}

// filterTermsRefused is the message of a filter over graph.MaxFilterTerms.
var filterTermsRefused = gqllimit.FilterTermsMessage(graph.MaxFilterTerms)

// costRow is a request and what the cost model must answer: "" (it runs),
// COMPLEXITY_LIMIT_EXCEEDED or BAD_USER_INPUT (nothing runs).
type costRow struct {
	name, query string
	variables   map[string]any
	code        string
}

func checkCostRow(t *testing.T, env *testenv.Env, key string, row costRow) {
	t.Helper()
	res := env.GraphQL(key, row.query, row.variables)
	if row.code == "" {
		if len(res.Errors) > 0 {
			t.Fatalf("refused: %+v", res.Errors)
		}
		return
	}
	if len(res.Errors) != 1 || res.Errors[0].Code() != row.code {
		t.Fatalf("status %d, errors %+v, want one %s", res.Status, res.Errors, row.code)
	}
	if row.code == graph.CodeBadUserInput && !strings.HasPrefix(res.Errors[0].Message, filterTermsRefused) {
		t.Errorf("message %q does not name the limit (%q)", res.Errors[0].Message, filterTermsRefused)
	}
	if d := string(res.Data); d != "" && d != "null" {
		t.Errorf("data %s: something ran", d)
	}
}

// TestOperationCost: every list is priced by its page size times its
// parents', every totalCount as a COUNT, every filter by its terms after
// variables are expanded, against a GRAPHQL_COMPLEXITY_LIMIT of 1000 (the
// default was 1000 when the rows were written; TestDocumentedUsesFit holds
// the default to what docs/api.md shows); the documented uses fit. Each
// refused row answered 200 with its data before (the deliveries one:
// 226–316 MB in 13–23 s with 10 endpoints of 100 deliveries each).
func TestOperationCost(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLComplexityLimit = 1000
	}})
	_, key := env.NewUser()
	// 25 terms, referenced 40 times in one document.
	filter25 := map[string]any{"filenameIn": manyOf(25, func(i int) any { return fmt.Sprintf("f%d.txt", i) })}
	filter100 := map[string]any{"filenameIn": manyOf(99, func(i int) any { return fmt.Sprintf("f%d.txt", i) }), "sizeGT": 0}
	rows := []costRow{
		// Documented uses: they fit.
		{"a full page of uploads, counted, with a filter of the most terms",
			`query($w: UploadWhereInput) { viewer { uploads(first: 100, where: $w) { totalCount pageInfo { hasNextPage } edges { node { id filename status } } } } }`,
			map[string]any{"w": filter100}, ""},
		{"a full page of audit events",
			`{ viewer { auditEvents(first: 100) { pageInfo { hasNextPage endCursor } edges { node { id uploadId kind createdAt } } } } }`, nil, ""},
		{"a full page of deleted uploads, counted",
			`{ viewer { deletedUploads(first: 100) { totalCount edges { node { id filename deletedAt purgeAt } } } } }`, nil, ""},
		{"every endpoint with its latest deliveries",
			`{ viewer { webhookEndpoints { id url events deliveries { id eventType status lastError } } } }`, nil, ""},

		// Lists priced by their page times their parents.
		{"490 aliases of deliveries(first: 100) under webhookEndpoints",
			`{ viewer { webhookEndpoints {` + aliased(490, `deliveries(first: 100) { payload }`) + ` } } }`, nil, gqllimit.ErrCodeComplexity},
		{"deliveries(first: 100) of every endpoint",
			`{ viewer { webhookEndpoints { deliveries(first: 100) { id status } } } }`, nil, gqllimit.ErrCodeComplexity},
		{"240 aliases of auditEvents(first: 100)",
			`{ viewer {` + aliased(240, `auditEvents(first: 100) { edges { node { id } } }`) + ` } }`, nil, gqllimit.ErrCodeComplexity},
		{"240 aliases of deletedUploads(first: 100)",
			`{ viewer {` + aliased(240, `deletedUploads(first: 100) { edges { node { id } } }`) + ` } }`, nil, gqllimit.ErrCodeComplexity},
		{"the default page of auditEvents is a full page",
			`{ viewer {` + aliased(4, `auditEvents { edges { node { id kind } } }`) + ` } }`, nil, gqllimit.ErrCodeComplexity},
		{"300 aliased totalCounts", `{ viewer {` + aliased(300, `uploads(first: 1) { totalCount }`) + ` } }`, nil, gqllimit.ErrCodeComplexity},
		{"11 totalCounts", `{ viewer {` + aliased(11, `uploads(first: 1) { totalCount }`) + ` } }`, nil, gqllimit.ErrCodeComplexity},
		{"the same fields in a fragment",
			`{ viewer { webhookEndpoints { ...D } } } fragment D on WebhookEndpoint {` + aliased(50, `deliveries(first: 100) { payload }`) + ` }`,
			nil, gqllimit.ErrCodeComplexity},

		// Filters priced by their terms, variables expanded.
		{"a variable of 25 terms referenced 40 times",
			`query($w: UploadWhereInput) { viewer {` + aliased(40, `uploads(first: 1, where: $w) { edges { cursor } }`) + ` } }`,
			map[string]any{"w": filter25}, gqllimit.ErrCodeComplexity},
		{"eight 4 KB filenameContains terms",
			`query($w: UploadWhereInput) { viewer { uploads(first: 1, where: $w) { edges { cursor } } } }`,
			map[string]any{"w": map[string]any{"or": manyOf(8, func(int) any { return map[string]any{"filenameContains": strings.Repeat("%_", 2048)} })}},
			gqllimit.ErrCodeComplexity},
		{"a filter of 30,000 terms",
			`query($w: UploadWhereInput) { viewer { uploads(first: 1, where: $w) { edges { cursor } } } }`,
			map[string]any{"w": map[string]any{"or": manyOf(30_000, func(i int) any { return map[string]any{"sizeGT": i} })}}, graph.CodeBadUserInput},
		{"filenameIn of 40,000",
			`query($w: UploadWhereInput) { viewer { uploads(first: 1, where: $w) { edges { cursor } } } }`,
			map[string]any{"w": map[string]any{"filenameIn": manyOf(40_000, func(i int) any { return fmt.Sprint(i) })}}, graph.CodeBadUserInput},
		{"sizeIn of 70,000",
			`query($w: UploadWhereInput) { viewer { uploads(first: 1, where: $w) { edges { cursor } } } }`,
			map[string]any{"w": map[string]any{"sizeIn": manyOf(70_000, func(i int) any { return i })}}, graph.CodeBadUserInput},
		{"or of 1,500, written in the document",
			`{ viewer { uploads(first: 1, where: {or: [` + strings.Repeat(`{sizeGT: 1}, `, 1500) + `]}) { edges { cursor } } } }`, nil, graph.CodeBadUserInput},
		{"one term over the limit",
			`query($w: UploadWhereInput) { viewer { uploads(first: 1, where: $w) { edges { cursor } } } }`,
			map[string]any{"w": map[string]any{"filenameIn": manyOf(graph.MaxFilterTerms, func(i int) any { return fmt.Sprint(i) }), "sizeGT": 0}},
			graph.CodeBadUserInput},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { checkCostRow(t, env, key, row) })
	}
}

// TestDocumentedUsesFit: the example queries of docs/api.md and of the
// schema fit the default GRAPHQL_COMPLEXITY_LIMIT, and twice the biggest of
// them does not: a frontend's dashboard of every endpoint with its 20 latest
// deliveries is not refused, and the limit still bounds what aliases buy.
func TestDocumentedUsesFit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLComplexityLimit = config.Defaults().GraphQLComplexityLimit
	}})
	_, key := env.NewUser()
	const endpoints = `webhookEndpoints { id url disabledAt disabledReason
  deliveries(first: 20) { id eventType status attempts lastError lastStatusCode createdAt deliveredAt } }`
	if doc, err := os.ReadFile("../docs/api.md"); err != nil || !strings.Contains(string(doc), endpoints) {
		t.Errorf("docs/api.md no longer shows the webhook dashboard query measured here (%v)", err)
	}
	for _, row := range []costRow{
		{"docs/api.md's webhook endpoints with their deliveries", `query { viewer { ` + endpoints + ` } }`, nil, ""},
		{"a full page of uploads with every field, counted",
			`{ viewer { uploads(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id filename size contentType status createdAt } } } } }`, nil, ""},
		{"docs/api.md's query twice, aliased", `query { viewer { a: ` + endpoints + ` b: ` + endpoints + ` } }`, nil, gqllimit.ErrCodeComplexity},
	} {
		t.Run(row.name, func(t *testing.T) { checkCostRow(t, env, key, row) })
	}
}

// TestOversizedFilterDeletesNothing: deleteUploadsWhere, dry or not, takes
// the filter limit of viewer.uploads: an oversized filter is BAD_USER_INPUT
// naming the limit, and nothing is deleted (it was INTERNAL_SERVER_ERROR,
// "Failed to delete upload record", from SQLite's limits, logged at ERROR).
func TestOversizedFilterDeletesNothing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	kept := env.MustUpload(key, "0.txt", []byte("x"))
	const mutation = `mutation($w: UploadWhereInput!, $dry: Boolean!) { deleteUploadsWhere(where: $w, dryRun: $dry) { deletedCount matchedCount } }`
	filters := map[string]map[string]any{
		"filenameIn of 40,000": {"filenameIn": manyOf(40_000, func(i int) any { return fmt.Sprintf("%d.txt", i) })},
		"sizeIn of 70,000":     {"sizeIn": manyOf(70_000, func(i int) any { return i })},
		"or of 1,500":          {"or": manyOf(1500, func(i int) any { return map[string]any{"filename": fmt.Sprintf("%d.txt", i)} })},
	}
	for name, filter := range filters {
		for _, dry := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, dryRun %v", name, dry), func(t *testing.T) {
				checkCostRow(t, env, key, costRow{query: mutation, variables: map[string]any{"w": filter, "dry": dry}, code: graph.CodeBadUserInput})
				env.AssertIntact(kept)
			})
		}
	}
	if strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
		t.Errorf("an oversized filter was logged as an error:\n%s", env.Logs.String())
	}
}

// TestOperationDeadline: an operation that runs past GRAPHQL_TIMEOUT is
// stopped with OPERATION_TIMEOUT: the delete it was running rolls back
// (record and object intact), the one it had committed stays done, its
// object purged. The second delete is held in DeleteOwned until its
// context ends; before the deadline existed it was held by the guard
// below and then deleted.
func TestOperationDeadline(t *testing.T) {
	// Serial: it holds the second delete for a one-second deadline that a busy machine must not spend on the first.
	const timeout = time.Second
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.GraphQLTimeout = timeout }})
	_, key := env.NewUser()
	first := env.MustUpload(key, "first.txt", []byte("1"))
	held := env.MustUpload(key, "held.txt", []byte("2"))
	// Only the second delete is held: the first runs before the hook is armed.
	armed := make(chan struct{})
	graph.SetAfterRead(env.App.Resolver, func(ctx context.Context) {
		select {
		case <-armed:
		default:
			close(armed) // the first delete passes
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * timeout):
		}
	})
	res := env.GraphQL(key, fmt.Sprintf(`mutation { a: deleteUpload(id: %q) { deletedUploadId } b: deleteUpload(id: %q) { deletedUploadId } }`, first.ID, held.ID), nil)
	if len(res.Errors) != 1 || res.Errors[0].Code() != graph.CodeOperationTimeout || res.Errors[0].Message != graph.ErrOperationTimeout.Message {
		t.Fatalf("errors %+v, data %s; want one OPERATION_TIMEOUT", res.Errors, res.Data)
	}
	// The data is null: deleteUpload is non-null, so b's error nulls it.
	env.AssertIntact(held)
	if _, err := env.Client().Upload.Get(t.Context(), first.ID); !ent.IsNotFound(err) {
		t.Errorf("the committed delete's record: %v", err)
	}
	env.Eventually(10*time.Second, "the committed delete's object purged", func() bool { return !env.ObjectExists(first.ObjectKey) })
	if n, err := env.Client().Upload.Query().Where(upload.ID(held.ID)).Count(t.Context()); err != nil || n != 1 {
		t.Errorf("held upload: %d records, %v", n, err)
	}
}

// fullWorld gives userID every list at its largest: the most webhook
// endpoints, each with a full page of deliveries, and full pages of
// uploads, audit events and deleted uploads, so that a cost model that
// undercounts a list shows in what a response holds.
func fullWorld(t testing.TB, env *testenv.Env, userID string) {
	t.Helper()
	ctx := context.Background()
	client := env.Client()
	payload := `{"type":"upload.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":"upl_0","filename":"` + strings.Repeat("x", 200) + `"}}`
	for range webhook.MaxEndpointsPerOwner {
		endpoint := client.WebhookEndpoint.Create().SetOwnerID(userID).SetURL("https://example.com/hook").
			SetEvents([]string{}).SetSecret([]byte("sealed")).SaveX(ctx)
		deliveries := make([]*ent.WebhookDeliveryCreate, webhook.MaxDeliveriesPage)
		for i := range deliveries {
			deliveries[i] = client.WebhookDelivery.Create().SetMessageID(idgen.NewMessage()).SetEndpointID(endpoint.ID).
				SetUploadID("upl_0").SetEventType("upload.created").SetPayload(payload).SetNextAttemptAt(time.Now().Add(time.Hour))
		}
		client.WebhookDelivery.CreateBulk(deliveries...).ExecX(ctx)
	}
	uploads := make([]*ent.UploadCreate, graph.MaxPageSize)
	events := make([]*ent.AuditEventCreate, graph.MaxPageSize)
	trash := make([]*ent.DeletedUploadCreate, graph.MaxPageSize)
	for i := range uploads {
		name := fmt.Sprintf("f%03d.txt", i)
		uploads[i] = client.Upload.Create().SetOwnerID(userID).SetFilename(name).
			SetContentType("text/plain").SetSize(int64(i)).SetStatus(upload.StatusCOMPLETED)
		events[i] = client.AuditEvent.Create().SetOwnerID(userID).SetUploadID(fmt.Sprintf("upl_%d", i)).
			SetKind(auditevent.KindCREATED).SetActor("cli").SetVia(auditevent.ViaCLI)
		trash[i] = client.DeletedUpload.Create().SetID(idgen.NewUpload()).SetOwnerID(userID).SetFilename(name).SetContentType("text/plain").
			SetSize(1).SetStatus(deletedupload.StatusCOMPLETED).SetBucket(env.Bucket).SetObjectKey("k" + name).
			SetCreatedAt(time.Now()).SetDeletedAt(time.Now()).SetPurgeAt(time.Now().Add(time.Hour))
	}
	client.Upload.CreateBulk(uploads...).ExecX(ctx)
	client.AuditEvent.CreateBulk(events...).ExecX(ctx)
	client.DeletedUpload.CreateBulk(trash...).ExecX(ctx)
}

// TestCostDocumented: the schema tells a caller the cost model's numbers
// where they read about the fields it prices.
func TestCostDocumented(t *testing.T) {
	t.Parallel()
	schema := graph.ServedSchema()
	viewer := schema.Query.Fields.ForName("viewer").Description
	for _, n := range []int{config.Defaults().GraphQLComplexityLimit, graph.MaxPageSize, webhook.MaxEndpointsPerOwner,
		graph.DefaultDeliveriesPage, httpserver.CountCost, httpserver.FilterTermCost, httpserver.MaxFilterTerms, gqllimit.FilterBytesPerCost} {
		if !regexp.MustCompile(fmt.Sprintf(`\b%d\b`, n)).MatchString(viewer) {
			t.Errorf("Query.viewer's description does not mention %d", n)
		}
	}
	for _, words := range []string{"GRAPHQL_COMPLEXITY_LIMIT", "COMPLEXITY_LIMIT_EXCEEDED", "GRAPHQL_TIMEOUT", graph.CodeOperationTimeout, fmt.Sprint(config.Defaults().GraphQLTimeout.Seconds())} {
		if !strings.Contains(viewer, words) {
			t.Errorf("Query.viewer's description does not mention %s", words)
		}
	}
	where := schema.Mutation.Fields.ForName("deleteUploadsWhere").Description
	if !strings.Contains(where, fmt.Sprintf("%d terms", httpserver.MaxFilterTerms)) {
		t.Errorf("deleteUploadsWhere's description does not give the filter limit:\n%s", where)
	}
}
