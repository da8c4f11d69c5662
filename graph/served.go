package graph

import (
	"maps"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/safedelete/uploads/graph/generated"
)

// unservedDirectives are directives of gqlgen's prelude the service does not
// offer. @defer: the service answers a request with one JSON response, which
// of an incremental result is only the first payload (`"hasNext": true`,
// then nothing), so advertising it would promise data that never arrives.
// Without its declaration, an operation using it fails validation
// (Unknown directive "@defer").
var unservedDirectives = []string{"defer"}

// ServedSchema returns the schema the service serves: the generated one
// without unservedDirectives.
func ServedSchema() *ast.Schema {
	generatedSchema := generated.NewExecutableSchema(generated.Config{}).Schema()
	served := *generatedSchema
	served.Directives = maps.Clone(generatedSchema.Directives)
	for _, name := range unservedDirectives {
		delete(served.Directives, name)
	}
	return &served
}
