// Package gqllimit bounds the shape of a GraphQL operation before anything
// else looks at it: how deeply fields nest and how many fields the
// operation expands to. gqlgen limits complexity but not depth, and its
// complexity calculation expands fragment spreads one by one: a 1 KB
// document whose fragments each spread the next one twice expands to
// millions of fields and keeps a core busy for seconds, even unauthenticated.
// This guard measures each fragment once, so it costs time linear in the
// document, and must be registered before the complexity limit.
package gqllimit

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Error codes of rejected operations.
const (
	ErrCode               = "DEPTH_LIMIT_EXCEEDED"
	ErrCodeFields         = "FIELD_LIMIT_EXCEEDED"
	ErrCodeMutationFields = "MUTATION_LIMIT_EXCEEDED"
)

// Limits rejects operations that nest fields deeper than MaxDepth, expand
// to more than MaxFields fields, or (mutations) run more than
// MaxMutationFields mutation fields. Introspection (fields under __schema
// and __type) is not counted against the depth: GraphiQL's own
// introspection query nests a dozen levels.
//
// Mutation fields run one after the other, each with its own database
// transaction and S3 calls; bounding them bounds the work and the time of
// one request, which the rate limiter counts once.
type Limits struct {
	MaxDepth          int
	MaxFields         int
	MaxMutationFields int
}

var (
	_ graphql.HandlerExtension        = Limits{}
	_ graphql.OperationContextMutator = Limits{}
)

// ExtensionName implements graphql.HandlerExtension.
func (Limits) ExtensionName() string { return "OperationLimits" }

// Validate implements graphql.HandlerExtension.
func (Limits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (l Limits) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	if opCtx.Operation.Operation == ast.Mutation {
		if n := rootFields(opCtx.Operation.SelectionSet, l.MaxMutationFields+1); n > l.MaxMutationFields {
			err := gqlerror.Errorf("an operation may run at most %d mutation fields; send the rest in another request", l.MaxMutationFields)
			errcode.Set(err, ErrCodeMutationFields)
			return err
		}
	}
	m := measurer{memo: map[string]shape{}, cap: l.MaxFields + 1}
	s := m.selections(opCtx.Operation.SelectionSet)
	switch {
	case s.fields > l.MaxFields:
		err := gqlerror.Errorf("operation expands to more than %d fields", l.MaxFields)
		errcode.Set(err, ErrCodeFields)
		return err
	case s.depth > l.MaxDepth:
		err := gqlerror.Errorf("operation has depth %d, which exceeds the limit of %d", s.depth, l.MaxDepth)
		errcode.Set(err, ErrCode)
		return err
	}
	return nil
}

// rootFields counts the fields a root selection set runs, fragments
// expanded, up to limit (a fragment cycle, rejected by validation, cannot
// make it loop: the count stops at limit).
func rootFields(set ast.SelectionSet, limit int) int {
	n := 0
	for _, sel := range set {
		if n >= limit {
			break
		}
		switch sel := sel.(type) {
		case *ast.Field:
			n++
		case *ast.InlineFragment:
			n += rootFields(sel.SelectionSet, limit-n)
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				n += rootFields(sel.Definition.SelectionSet, limit-n)
			}
		}
	}
	return n
}

// shape is what a selection set expands to: its depth and its field count.
type shape struct{ depth, fields int }

type measurer struct {
	memo map[string]shape // by fragment name: each is measured once
	cap  int              // counts saturate here, so they cannot overflow
}

func (m *measurer) selections(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var s shape
		switch sel := sel.(type) {
		case *ast.Field:
			sub := m.selections(sel.SelectionSet)
			s = shape{depth: sub.depth + 1, fields: sub.fields + 1}
			if strings.HasPrefix(sel.Name, "__") {
				s.depth = 0
			}
		case *ast.InlineFragment:
			s = m.selections(sel.SelectionSet)
		case *ast.FragmentSpread:
			s = m.fragment(sel)
		}
		out.depth = max(out.depth, s.depth)
		out.fields = min(out.fields+s.fields, m.cap)
	}
	return out
}

func (m *measurer) fragment(spread *ast.FragmentSpread) shape {
	if s, ok := m.memo[spread.Name]; ok {
		return s
	}
	if spread.Definition == nil {
		return shape{}
	}
	// Validation has rejected fragment cycles; the placeholder only keeps a
	// cycle from recursing forever should one get here.
	m.memo[spread.Name] = shape{}
	s := m.selections(spread.Definition.SelectionSet)
	m.memo[spread.Name] = s
	return s
}
