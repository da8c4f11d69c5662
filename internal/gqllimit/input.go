package gqllimit

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Inputs rejects operations whose input strings (variables and literal
// arguments alike) are not valid UTF-8, contain NUL, or are longer than
// MaxStringBytes, and whose input values nest deeper than MaxDepth. Such
// input names nothing the service stores, and databases fail on it in their
// own ways (PostgreSQL refuses NUL in text; SQLite calls a long LIKE pattern
// too complex): checked here, once, for every field, it is the caller's
// error on every engine, never an internal one.
type Inputs struct {
	MaxStringBytes int
	MaxDepth       int
}

var (
	_ graphql.HandlerExtension        = Inputs{}
	_ graphql.OperationContextMutator = Inputs{}
)

// ExtensionName implements graphql.HandlerExtension.
func (Inputs) ExtensionName() string { return "InputLimits" }

// Validate implements graphql.HandlerExtension.
func (Inputs) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (in Inputs) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	ok := in.variable(opCtx.Variables, 0)
	if opCtx.Doc != nil {
		for _, op := range opCtx.Doc.Operations {
			ok = ok && in.selections(op.SelectionSet) && in.directives(op.Directives)
			for _, v := range op.VariableDefinitions {
				ok = ok && in.literal(v.DefaultValue, 0)
			}
		}
		for _, f := range opCtx.Doc.Fragments {
			ok = ok && in.selections(f.SelectionSet) && in.directives(f.Directives)
		}
	}
	if ok {
		return nil
	}
	err := gqlerror.Errorf("%s", InputsMessage(in.MaxStringBytes, in.MaxDepth))
	errcode.Set(err, "BAD_USER_INPUT")
	return err
}

// InputsMessage is the error message of an operation Inputs refuses.
func InputsMessage(maxStringBytes, maxDepth int) string {
	return fmt.Sprintf("input strings must be valid UTF-8 without NUL characters, at most %d bytes long, in values nested at most %d deep", maxStringBytes, maxDepth)
}

func (in Inputs) validString(s string) bool {
	return len(s) <= in.MaxStringBytes && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// variable checks a decoded JSON variable value.
func (in Inputs) variable(v any, depth int) bool {
	if depth > in.MaxDepth {
		return false
	}
	switch v := v.(type) {
	case string:
		return in.validString(v)
	case map[string]any:
		for k, e := range v {
			if !in.validString(k) || !in.variable(e, depth+1) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !in.variable(e, depth+1) {
				return false
			}
		}
	}
	return true
}

func (in Inputs) selections(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			for _, arg := range sel.Arguments {
				if !in.literal(arg.Value, 0) {
					return false
				}
			}
			if !in.directives(sel.Directives) || !in.selections(sel.SelectionSet) {
				return false
			}
		case *ast.InlineFragment:
			if !in.directives(sel.Directives) || !in.selections(sel.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if !in.directives(sel.Directives) {
				return false
			}
		}
	}
	return true
}

func (in Inputs) directives(list ast.DirectiveList) bool {
	for _, d := range list {
		for _, arg := range d.Arguments {
			if !in.literal(arg.Value, 0) {
				return false
			}
		}
	}
	return true
}

// literal checks a value written in the document.
func (in Inputs) literal(v *ast.Value, depth int) bool {
	if v == nil {
		return true
	}
	if depth > in.MaxDepth {
		return false
	}
	switch v.Kind {
	case ast.StringValue, ast.BlockValue:
		return in.validString(v.Raw)
	case ast.ListValue, ast.ObjectValue:
		for _, child := range v.Children {
			if !in.literal(child.Value, depth+1) {
				return false
			}
		}
	}
	return true
}
