//go:build ignore

// entc.go generates the Ent client and, through entgql, the GraphQL schema
// of the Ent types (graph/ent.graphqls). Run by `go generate ./ent`.
package main

import (
	"log"
	"slices"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"github.com/vektah/gqlparser/v2/ast"
)

func main() {
	ex, err := entgql.NewExtension(
		entgql.WithConfigPath("../gqlgen.yml"),
		entgql.WithSchemaGenerator(),
		entgql.WithSchemaPath("../graph/ent.graphqls"),
		entgql.WithWhereInputs(true),
		entgql.WithSchemaHook(withoutCodegenDirectives),
	)
	if err != nil {
		log.Fatalf("creating entgql extension: %v", err)
	}
	err = entc.Generate("./schema", &gen.Config{
		Features: []gen.Feature{
			gen.FeatureExecQuery,
			gen.FeatureVersionedMigration,
		},
	}, entc.Extensions(ex), entc.TemplateDir("./template"))
	if err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}

// codegenDirectives steer gqlgen's code generation only. Declared in the
// schema, they would be served to every caller through introspection
// (gqlgen serves every declared directive, skip_runtime or not), so
// ent.graphqls carries none: the Go types they would bind are in gqlgen.yml.
var codegenDirectives = []string{"goModel", "goField"}

// withoutCodegenDirectives removes the declarations and the uses of
// codegenDirectives from the generated schema.
func withoutCodegenDirectives(_ *gen.Graph, s *ast.Schema) error {
	for _, name := range codegenDirectives {
		delete(s.Directives, name)
	}
	keep := func(list ast.DirectiveList) ast.DirectiveList {
		var kept ast.DirectiveList
		for _, d := range list {
			if !slices.Contains(codegenDirectives, d.Name) {
				kept = append(kept, d)
			}
		}
		return kept
	}
	for _, def := range s.Types {
		def.Directives = keep(def.Directives)
		for _, f := range def.Fields {
			f.Directives = keep(f.Directives)
		}
	}
	return nil
}
