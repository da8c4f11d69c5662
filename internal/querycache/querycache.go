// Package querycache is the GraphQL server's cache of parsed, validated
// documents (gqlgen's graphql.Cache), made for callers that write their ids
// into the document instead of into variables:
//
//	mutation { deleteUpload(id: "upl_…") { deletedUploadId } }
//
// gqlgen's own cache is keyed by the document's text, so every such request
// misses it and pays the full validation: two dozen rules walking the
// document, the larger part of the per-request cost of GraphQL. This cache
// keeps that exact-text cache and adds a second one keyed by the document's
// shape: its tokens with every string literal replaced by a placeholder.
// A document whose shape already passed validation is parsed (its strings
// are its own) and annotated against the schema, as validation annotates it,
// but its rules are not run again.
//
// That is sound because no validation rule looks into a string's content
// except one: OverlappingFieldsCanBeMerged compares two fields' arguments,
// so `a: upload(id: "x") a: upload(id: "x")` is valid and `a: upload(id: "x")
// a: upload(id: "y")` is not. A placeholder therefore names which distinct
// string it stands for (the first distinct value is #0, the next #1, ...):
// two documents of one shape have equal strings in exactly the same places.
// Everything else (names, numbers, enum values, punctuation, block string
// or not) is in the shape as written. Whitespace and comments are not, as
// they change no rule's verdict. Only documents gqlgen has validated are
// added, so a shape in the cache is one that passed.
package querycache

import (
	"context"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// Cache holds, for size documents and size shapes, what gqlgen validated.
type Cache struct {
	schema *ast.Schema
	docs   *lru.LRU[*ast.QueryDocument] // by the document's text
	shapes *lru.LRU[struct{}]           // by Shape
}

var _ graphql.Cache[*ast.QueryDocument] = (*Cache)(nil)

// New returns a cache for documents of schema.
func New(schema *ast.Schema, size int) *Cache {
	return &Cache{schema: schema, docs: lru.New[*ast.QueryDocument](size), shapes: lru.New[struct{}](size)}
}

// Get returns the document of query: the one validated before if its text
// is known; a new parse, annotated but not validated again, if its shape
// is; otherwise nothing, and gqlgen parses and validates it.
func (c *Cache) Get(ctx context.Context, query string) (*ast.QueryDocument, bool) {
	if doc, ok := c.docs.Get(ctx, query); ok {
		return doc, true
	}
	shape, ok := Shape(query)
	if !ok {
		return nil, false
	}
	if _, ok := c.shapes.Get(ctx, shape); !ok {
		return nil, false
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil || len(doc.Operations) == 0 {
		return nil, false // cannot be, for a shape that parsed; gqlgen says why
	}
	// What validation does besides its rules: resolve every field, type,
	// variable and argument to its definition, which execution reads.
	validator.Walk(c.schema, doc, &validator.Events{})
	return doc, true
}

// Add records a document gqlgen has parsed and validated, and its shape.
func (c *Cache) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	c.docs.Add(ctx, query, doc)
	if shape, ok := Shape(query); ok {
		c.shapes.Add(ctx, shape, struct{}{})
	}
}

// Shape returns query's tokens with every string literal replaced by the
// index of its distinct value, and whether it has a shape worth keeping:
// false for a document that does not lex or has no string literal (its
// text is its shape).
func Shape(query string) (string, bool) {
	lx := lexer.New(&ast.Source{Input: query})
	var (
		b          strings.Builder
		strs       map[string]int // distinct string values, numbered
		hasStrings bool
	)
	b.Grow(len(query))
	for {
		tok, err := lx.ReadToken()
		if err != nil {
			return "", false
		}
		switch tok.Kind {
		case lexer.EOF:
			return b.String(), hasStrings
		case lexer.Comment:
			continue
		}
		// The kind too: "x" and """x""" are not the same argument.
		b.WriteString(strconv.Itoa(int(tok.Kind)))
		b.WriteByte(':')
		switch tok.Kind {
		case lexer.String, lexer.BlockString:
			if strs == nil {
				strs = make(map[string]int)
			}
			n, seen := strs[tok.Value]
			if !seen {
				n = len(strs)
				strs[tok.Value] = n
			}
			b.WriteByte('#')
			b.WriteString(strconv.Itoa(n))
			hasStrings = true
		default:
			b.WriteString(tok.Value) // names, numbers, punctuation: no spaces
		}
		b.WriteByte(' ')
	}
}
