package httpserver_test

import (
	"slices"
	"testing"

	"github.com/safedelete/uploads/internal/testenv"
)

// TestServedDirectives: introspection shows only directives a caller can
// use. gqlgen's code-generation directives (@goField, @goModel) are not in
// the schema, and @defer, which the transports cannot deliver, is neither
// advertised nor accepted.
func TestServedDirectives(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	res := env.GraphQL(key, `{ __schema { directives { name } } }`, nil)
	var data struct {
		Schema struct{ Directives []struct{ Name string } } `json:"__schema"`
	}
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("introspection: %+v %s", res.Errors, res.Data)
	}
	var names []string
	for _, d := range data.Schema.Directives {
		names = append(names, d.Name)
	}
	if want := []string{"deprecated", "include", "oneOf", "skip", "specifiedBy"}; !slices.Equal(names, want) {
		t.Errorf("directives %q, want %q", names, want)
	}

	res = env.GraphQL(key, `{ viewer { email ... @defer { uploads(first: 1) { totalCount } } } }`, nil)
	if len(res.Errors) != 1 || res.Errors[0].Code() != "GRAPHQL_VALIDATION_FAILED" || res.Errors[0].Message != `Unknown directive "@defer".` || res.Data != nil {
		t.Errorf("@defer: %d %+v %s, want one GRAPHQL_VALIDATION_FAILED and no data", res.Status, res.Errors, res.Data)
	}
}
