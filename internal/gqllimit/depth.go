// Package gqllimit limits how deeply a GraphQL operation may nest fields.
// gqlgen limits complexity but not depth; deep queries through cyclic
// types (node -> user -> uploads -> ...) are a cheap way to load a server.
package gqllimit

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// ErrCode is the extensions.code of a rejected operation.
const ErrCode = "DEPTH_LIMIT_EXCEEDED"

// Depth rejects operations nesting fields deeper than Max. Introspection
// (fields under __schema and __type) is not counted: GraphiQL's own
// introspection query nests a dozen levels.
type Depth struct {
	Max int
}

var (
	_ graphql.HandlerExtension        = Depth{}
	_ graphql.OperationContextMutator = Depth{}
)

// ExtensionName implements graphql.HandlerExtension.
func (Depth) ExtensionName() string { return "DepthLimit" }

// Validate implements graphql.HandlerExtension.
func (Depth) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (d Depth) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	if depth := selectionDepth(opCtx.Operation.SelectionSet, 0); depth > d.Max {
		err := gqlerror.Errorf("operation has depth %d, which exceeds the limit of %d", depth, d.Max)
		errcode.Set(err, ErrCode)
		return err
	}
	return nil
}

// visitedLimit stops runaway recursion through fragments; validation already
// rejects fragment cycles, this only guards the walk.
const visitedLimit = 1000

func selectionDepth(set ast.SelectionSet, level int) int {
	if level > visitedLimit {
		return level
	}
	deepest := level
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = selectionDepth(s.SelectionSet, level+1)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, level)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, level)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}
