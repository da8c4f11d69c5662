package httpserver

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/safedelete/uploads/graph"
)

// TestEveryListPriced: every field of the served schema that returns a list
// of objects has its element count in the cost model, every connection its
// page size, every connection's edges are priced per element of the page,
// and every totalCount as a COUNT; every filter input is counted. A list
// added to the schema without a price fails here, not in production.
func TestEveryListPriced(t *testing.T) {
	t.Parallel()
	schema := graph.ServedSchema()
	cost := operationCost(1000)
	for _, typ := range schema.Types {
		if typ.Kind != ast.Object || strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, field := range typ.Fields {
			if strings.HasPrefix(field.Name, "__") {
				continue
			}
			key := typ.Name + "." + field.Name
			price := cost.Prices[key]
			element := schema.Types[field.Type.Name()]
			hasSelection := element != nil && (element.Kind == ast.Object || element.Kind == ast.Interface || element.Kind == ast.Union)
			switch {
			case strings.HasSuffix(typ.Name, "Connection") && field.Name == "edges":
				if !price.PerPage {
					t.Errorf("%s is not priced per element of its page", key)
				}
			case strings.HasSuffix(typ.Name, "Connection") && field.Name == "totalCount":
				if price.Own < graph.MaxPageSize {
					t.Errorf("%s costs %d, less than a page", key, price.Own)
				}
			case strings.HasSuffix(field.Type.Name(), "Connection"):
				if price.Page == nil {
					t.Errorf("%s returns a connection without a page size in the cost model", key)
				}
			case field.Type.Elem != nil && hasSelection:
				if price.Elements == nil {
					t.Errorf("%s returns a list of %s without an element count in the cost model", key, field.Type.Name())
				}
			}
			for _, arg := range field.Arguments {
				input := schema.Types[arg.Type.Name()]
				// An order is a field and a direction: not a filter.
				isOrder := strings.HasSuffix(arg.Type.Name(), "Order")
				if input != nil && input.Kind == ast.InputObject && !isOrder && !cost.Filters[input.Name] {
					t.Errorf("%s(%s: %s): an input object that the cost model does not count as a filter", key, arg.Name, input.Name)
				}
			}
		}
	}
}
