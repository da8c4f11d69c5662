package querycache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/querycache"
)

// TestShape: documents share a shape exactly when one validation verdict
// holds for both: they differ only in which strings they carry, and carry
// equal strings in the same places.
func TestShape(t *testing.T) {
	t.Parallel()
	same := [][2]string{
		{`mutation { deleteUpload(id: "upl_a") { deletedUploadId } }`,
			`mutation   { deleteUpload(id: "upl_bbbbbbbb") # a comment
			  { deletedUploadId } }`},
		{`{ a: upload(id: "x") { id } b: upload(id: "x") { id } }`,
			`{ a: upload(id: "y") { id } b: upload(id: "y") { id } }`},
		{`{ a: upload(id: "x") { id } b: upload(id: "y") { id } }`,
			`{ a: upload(id: "1") { id } b: upload(id: "2") { id } }`},
		{`{ upload(id: "caf\u00e9") { id } }`, `{ upload(id: "plain") { id } }`},
	}
	for _, p := range same {
		a, okA := querycache.Shape(p[0])
		b, okB := querycache.Shape(p[1])
		if !okA || !okB || a != b {
			t.Errorf("want one shape:\n%s\n%s\ngot %q (%v), %q (%v)", p[0], p[1], a, okA, b, okB)
		}
	}
	differ := [][2]string{
		// OverlappingFieldsCanBeMerged: one alias, equal arguments or not.
		{`{ a: upload(id: "x") { id } a: upload(id: "x") { id } }`,
			`{ a: upload(id: "x") { id } a: upload(id: "y") { id } }`},
		// A block string is not the same argument as a string of its value.
		{`{ a: upload(id: "x") { id } a: upload(id: "x") { id } }`,
			`{ a: upload(id: "x") { id } a: upload(id: """x""") { id } }`},
		{`{ uploads(first: 1) { totalCount } }`, `{ uploads(first: 99999999999) { totalCount } }`},
		{`{ upload(id: "x") { id } }`, `{ upload(id: "x") { filename } }`},
		{`{ upload(id: "x") { id } }`, `{ upload(ids: "x") { id } }`},
	}
	for _, p := range differ {
		a, _ := querycache.Shape(p[0])
		b, _ := querycache.Shape(p[1])
		if a == b {
			t.Errorf("want two shapes:\n%s\n%s\nboth %q", p[0], p[1], a)
		}
	}
	for _, q := range []string{`{ viewer { id } }`, `{ upload(id: "unterminated) { id } }`, `mutation($id: ID!) { deleteUpload(id: $id) { message } }`} {
		if shape, ok := querycache.Shape(q); ok {
			t.Errorf("%s: shape %q; want none (no string literal, or no lexing)", q, shape)
		}
	}
}

// BenchmarkDocuments prices what a delete whose id is written into the
// document costs before it runs: parsed and validated, as gqlgen does on a
// miss (what every such document cost before this cache), against a hit on
// its shape. The ratio of the two is the figure; both run in one process.
//
//	go test -run '^$' -bench Documents -benchmem ./internal/querycache
func BenchmarkDocuments(b *testing.B) {
	schema := graph.ServedSchema()
	doc := func(i int) string {
		return fmt.Sprintf(`mutation { deleteUpload(id: "upl_%032x") { deletedUploadId message } }`, i)
	}
	b.Run("validated", func(b *testing.B) {
		for i := range b.N {
			d, err := parser.ParseQuery(&ast.Source{Input: doc(i)})
			if err != nil {
				b.Fatal(err)
			}
			if errs := validator.ValidateWithRules(schema, d, rules.NewDefaultRules()); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
	})
	b.Run("shape-hit", func(b *testing.B) {
		cache := querycache.New(schema, 1000)
		ctx := context.Background()
		first, _ := parser.ParseQuery(&ast.Source{Input: doc(-1)})
		cache.Add(ctx, doc(-1), first)
		b.ResetTimer()
		for i := range b.N {
			if _, ok := cache.Get(ctx, doc(i)); !ok {
				b.Fatal("a document of a known shape missed")
			}
		}
	})
}
