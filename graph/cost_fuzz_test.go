package graph_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// FuzzOperationCost sends fuzzed queries and variables, as a user who has
// every list at its largest (fullWorld), and holds the cost model to what
// the server then does: an operation the cost limit lets through answers
// at most as many fields as its limit (every list counted at its true
// length), and finishes well before its deadline. Introspection, whose
// answers are the schema and priced as a whole, and mutations, which
// would change the world, are left to other tests.
func FuzzOperationCost(f *testing.F) {
	limit := config.Defaults().GraphQLComplexityLimit
	env := testenv.New(f, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLComplexityLimit = limit
		c.GraphQLTimeout = 20 * time.Second // far beyond what any operation the limit lets through takes here
	}})
	userID, key := env.NewUser()
	fullWorld(f, env, userID)
	schema := graph.ServedSchema()

	for _, seed := range []struct{ doc, vars string }{
		{`{ viewer { webhookEndpoints { id deliveries { id status payload } } } }`, ``},
		{`{ viewer { webhookEndpoints { a: deliveries(first: 100) { payload } b: deliveries(first: 100) { payload } } } }`, ``},
		{`query($n: Int) { viewer { webhookEndpoints { deliveries(first: $n) { payload } } } }`, `{"n": 100}`},
		{`{ viewer { uploads(first: 100) { totalCount pageInfo { hasNextPage } edges { node { id filename status } } } } }`, ``},
		{`{ viewer { uploads { edges { cursor node { id } } } } }`, ``},
		{`query($l: Int) { viewer { uploads(last: $l) { edges { node { id } } } } }`, `{"l": 100}`},
		{`{ viewer { auditEvents(first: 100) { edges { node { id kind uploadId } } } } }`, ``},
		{`{ viewer { a: auditEvents { edges { node { id } } } b: auditEvents { edges { node { id } } } } }`, ``},
		{`{ viewer { deletedUploads(first: 100) { totalCount edges { node { id filename } } } } }`, ``},
		{`query($w: UploadWhereInput) { viewer { a: uploads(where: $w) { totalCount } b: uploads(where: $w) { totalCount } } }`, `{"w": {"or": [{"filenameContains": "f0"}, {"sizeGT": 5}]}}`},
		{`{ viewer { ...U } } fragment U on User { uploads(first: 50) { edges { node { ...N } } } } fragment N on Upload { id filename size }`, ``},
		{`query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Upload { filename } } }`, `{"ids": ["a", "b", "c"]}`},
		{`{ viewer { webhookEndpoints { ... on WebhookEndpoint { deliveries(first: 50) { id } } } } }`, ``},
		// Over the limit, and over it in fields answered should the model
		// undercount any of these lists.
		{`{ viewer { webhookEndpoints { deliveries(first: 100) { id status } } } }`, ``},
		{`{ viewer { a: auditEvents(first: 100) { edges { node { id kind uploadId } } } b: auditEvents(first: 100) { edges { node { id kind uploadId } } } c: auditEvents(first: 100) { edges { node { id kind uploadId } } } } }`, ``},
		{`{ viewer { a: deletedUploads { edges { node { id filename size } } } b: deletedUploads { edges { node { id filename size } } } c: deletedUploads { edges { node { id filename size } } } } }`, ``},
		{`{ viewer { a: uploads { edges { node { id filename size } } } b: uploads { edges { node { id filename size } } } c: uploads { edges { node { id filename size } } } } }`, ``},
	} {
		f.Add(seed.doc, seed.vars)
	}
	f.Fuzz(func(t *testing.T, doc, vars string) {
		if len(doc)+len(vars) > maxFuzzRequest {
			return
		}
		parsed, err := gqlparser.LoadQuery(schema, doc)
		if err != nil || strings.Contains(doc, "__schema") || strings.Contains(doc, "__type") {
			return // refused as invalid, or introspection
		}
		for _, op := range parsed.Operations {
			if op.Operation != ast.Query {
				return
			}
		}
		var variables map[string]any
		if json.Unmarshal([]byte(vars), &variables) != nil {
			variables = nil
		}
		res := env.For(t).GraphQL(key, doc, variables)
		for _, e := range res.Errors {
			if e.Code() == graph.CodeOperationTimeout || e.Code() == graph.CodeInternal {
				t.Fatalf("an operation within the cost limit: %s %+v", e.Code(), e.Message)
			}
		}
		var data any
		if len(res.Data) == 0 || json.Unmarshal(res.Data, &data) != nil {
			return // refused before running
		}
		if n := responseFields(data); n > limit {
			t.Fatalf("an operation within the cost limit (%d) answered %d fields:\n%s\nvariables %s", limit, n, doc, vars)
		}
	})
}

// responseFields counts the fields of a response's data: the entries of
// every object in it, however deeply nested.
func responseFields(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			n += 1 + responseFields(e)
		}
	case []any:
		for _, e := range v {
			n += responseFields(e)
		}
	}
	return n
}
