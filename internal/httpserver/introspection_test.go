package httpserver_test

import (
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/gqllimit"
	"github.com/safedelete/uploads/internal/testenv"
)

// introspectionQuery is GraphiQL's (graphql-js getIntrospectionQuery with
// descriptions, deprecated input values and oneOf).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description isOneOf
  fields(includeDeprecated: true) {
    name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

// TestIntrospection: the playground's introspection fits the default
// limits; introspection repeated under aliases, whose answers are the
// whole schema each time, does not.
func TestIntrospection(t *testing.T) {
	t.Parallel()
	defaults := config.Defaults()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLComplexityLimit = defaults.GraphQLComplexityLimit
		c.GraphQLDepthLimit = defaults.GraphQLDepthLimit
	}})
	res := env.GraphQL("", introspectionQuery, nil)
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data), `"deleteUploadsWhere"`) {
		t.Fatalf("GraphiQL's introspection: %+v, %d bytes of data", res.Errors, len(res.Data))
	}
	var aliases strings.Builder
	for i := range 20 {
		aliases.WriteString(" a" + string(rune('a'+i)) + ": __schema { types { fields { args { name } } } }")
	}
	res = env.GraphQL("", "{"+aliases.String()+" }", nil)
	if len(res.Errors) != 1 || res.Errors[0].Code() != gqllimit.ErrCodeComplexity {
		t.Errorf("20 aliased introspections: %+v, %d bytes of data; want %s", res.Errors, len(res.Data), gqllimit.ErrCodeComplexity)
	}
}
