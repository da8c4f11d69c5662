package gqllimit_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/safedelete/uploads/internal/gqllimit"
)

var costSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
type Query { items(first: Int = 10, where: Filter): [Item!]! item: Item }
type Item { id: ID! name: String! children(first: Int): [Item!]! }
input Filter { and: [Filter!] nameIn: [String!] name: String }
`})

func elements(args map[string]any) int {
	n, ok := gqllimit.IntArg(args, "first")
	if !ok {
		return 10
	}
	return n
}

var cost = gqllimit.Cost{
	Limit: 1000,
	Prices: map[string]gqllimit.Price{
		"Query.items":   {Elements: elements},
		"Item.children": {Elements: elements},
	},
	Filters:        map[string]bool{"Filter": true},
	MaxFilterTerms: 10,
	FilterTermCost: 2,
}

// TestMeasure: lists cost their elements times their parents', filters
// their terms and bytes wherever a variable is used, fragments as their
// fields, and a document that expands exponentially is measured at once.
func TestMeasure(t *testing.T) {
	t.Parallel()
	bomb := strings.Builder{}
	bomb.WriteString("{ items { ...F0 } }\n")
	for i := range 40 {
		fmt.Fprintf(&bomb, "fragment F%d on Item { children(first: 2) { ...F%d ...F%d } }\n", i, i+1, i+1)
	}
	bomb.WriteString("fragment F40 on Item { id }\n")
	rows := []struct {
		name, doc      string
		vars           map[string]any
		cost, maxTerms int
	}{
		{"a list at its default size", `{ items { id } }`, nil, 11, 0},
		{"a list under a list", `{ items(first: 3) { children(first: 4) { id name } } }`, nil, 1 + 3*(1+4*2), 0},
		{"first from a variable", `query($n: Int) { items(first: $n) { id } }`, map[string]any{"n": 7}, 8, 0},
		{"a variable filter counted where it is used",
			`query($f: Filter) { a: items(first: 1, where: $f) { id } b: items(first: 1, where: $f) { id } }`,
			map[string]any{"f": map[string]any{"nameIn": []any{"a", "b", "c"}}}, 2 * (1 + 3*2 + 1), 3},
		{"a filter's bytes", `{ items(first: 1, where: {name: "` + strings.Repeat("x", 64) + `"}) { id } }`, nil, 1 + 2 + 2 + 1, 1},
		{"nested filters", `{ items(first: 0, where: {and: [{name: "a"}, {nameIn: ["x", "y"]}]}) { id } }`, nil, 1 + 5*2, 5},
		{"a fragment", `{ items(first: 2) { ...I } } fragment I on Item { id name }`, nil, 1 + 2*2, 0},
		{"fragments that expand exponentially", bomb.String(), nil, cost.Limit + 1, 0},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			doc, err := gqlparser.LoadQuery(costSchema, row.doc)
			if err != nil {
				t.Fatal(err)
			}
			got, terms := cost.Measure(doc.Operations[0], row.vars)
			if got != row.cost || terms != row.maxTerms {
				t.Errorf("cost %d, terms %d; want %d, %d", got, terms, row.cost, row.maxTerms)
			}
		})
	}
}
