package httpserver

import (
	"context"
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestIdempotencyReviewNoKeyNoWork: a mutation sent without an
// Idempotency-Key pays nothing for the feature (CONVENTIONS, "what is off
// costs nothing"): its variables are not encoded and digested for a key it
// did not send. A deleteUploads of 1,000 ids cost 14 allocations and 83 KB
// per call, every mutation at least a JSON encoding and a SHA-256.
func TestIdempotencyReviewNoKeyNoWork(t *testing.T) {
	ids := make([]any, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("upl_%032x", i)
	}
	oc := &graphql.OperationContext{
		RawQuery:  `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds } }`,
		Variables: map[string]any{"ids": ids},
		Operation: &ast.OperationDefinition{Operation: ast.Mutation},
	}
	ctx := graphql.WithOperationContext(context.Background(), oc)
	next := func(context.Context) graphql.ResponseHandler { return nil }
	if allocs := testing.AllocsPerRun(20, func() { takeIdempotencyKey(ctx, next) }); allocs > 0 {
		t.Errorf("a mutation without a key: %.0f allocations in takeIdempotencyKey, want 0", allocs)
	}
}
