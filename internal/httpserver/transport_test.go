package httpserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

const (
	jsonType            = "application/json"
	graphQLResponseType = "application/graphql-response+json"
)

// TestGraphQLOverHTTP: /graphql answers as the GraphQL over HTTP
// specification says. A request error (parse, validation, variable
// coercion: nothing ran) is 200 under application/json and 400 under
// application/graphql-response+json, and has no data entry either way; a
// request that is not a GraphQL request at all is 400; GET runs queries only.
func TestGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	const (
		typename       = `{"query":"{ __typename }"}`
		parseFailure   = `{"query":"{"}`
		invalid        = `{"query":"{ noSuchField }"}`
		coerceFailure  = `{"query":"query($id: ID!) { upload(id: $id) { id } }","variables":{"id":null}}`
		fieldError     = `{"query":"mutation { deleteUpload(id: \"upl_00000000000000000000000000000000\") { message } }"}`
		noQuery        = `{"qeury":"{ __typename }"}`
		notJSON        = `{"query":`
		numberAsQuery  = `{"query":1}`
		stringVariable = `{"query":"{ __typename }","variables":"{}"}`
	)
	rows := []struct {
		name, method, accept, body string
		wantStatus                 int
		wantType                   string
		wantData                   bool // a data entry, even null
		wantCode                   string
	}{
		{"a query, no Accept", http.MethodPost, "", typename, 200, jsonType, true, ""},
		{"a query, Accept: */*", http.MethodPost, "*/*", typename, 200, jsonType, true, ""},
		{"a query, Accept: graphql-response+json", http.MethodPost, graphQLResponseType, typename, 200, graphQLResponseType, true, ""},
		{"the higher quality wins", http.MethodPost, "application/json;q=0.5, application/graphql-response+json", typename, 200, graphQLResponseType, true, ""},
		{"the first listed among equals", http.MethodPost, "application/json, application/graphql-response+json", typename, 200, jsonType, true, ""},
		{"an Accept naming neither: application/json", http.MethodPost, "text/html", typename, 200, jsonType, true, ""},

		{"parse failure, json", http.MethodPost, jsonType, parseFailure, 200, jsonType, false, "GRAPHQL_PARSE_FAILED"},
		{"parse failure, graphql-response+json", http.MethodPost, graphQLResponseType, parseFailure, 400, graphQLResponseType, false, "GRAPHQL_PARSE_FAILED"},
		{"validation failure, json", http.MethodPost, jsonType, invalid, 200, jsonType, false, "GRAPHQL_VALIDATION_FAILED"},
		{"validation failure, graphql-response+json", http.MethodPost, graphQLResponseType, invalid, 400, graphQLResponseType, false, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion failure, json", http.MethodPost, jsonType, coerceFailure, 200, jsonType, false, "GRAPHQL_VALIDATION_FAILED"},
		{"variable coercion failure, graphql-response+json", http.MethodPost, graphQLResponseType, coerceFailure, 400, graphQLResponseType, false, "GRAPHQL_VALIDATION_FAILED"},
		// Executed: the error is a field's, and data says what ran.
		{"a field error, graphql-response+json", http.MethodPost, graphQLResponseType, fieldError, 200, graphQLResponseType, true, "NOT_FOUND"},

		{"no query", http.MethodPost, "", noQuery, 400, jsonType, false, "BAD_USER_INPUT"},
		{"no query, graphql-response+json", http.MethodPost, graphQLResponseType, noQuery, 400, graphQLResponseType, false, "BAD_USER_INPUT"},
		{"a body that is not JSON", http.MethodPost, jsonType, notJSON, 400, jsonType, false, "BAD_USER_INPUT"},
		{"a query that is not a string", http.MethodPost, jsonType, numberAsQuery, 400, jsonType, false, "BAD_USER_INPUT"},
		{"variables that are not an object", http.MethodPost, jsonType, stringVariable, 400, jsonType, false, "BAD_USER_INPUT"},

		{"GET a query", http.MethodGet, jsonType, "query={ __typename }", 200, jsonType, true, ""},
		{"GET with variables", http.MethodGet, jsonType, `query=query($id: ID!) { upload(id: $id) { id } }&variables={"id":"upl_x"}`, 200, jsonType, true, ""},
		{"GET a mutation", http.MethodGet, graphQLResponseType, `query=mutation { deleteUpload(id: "upl_x") { message } }`, 405, graphQLResponseType, false, "BAD_USER_INPUT"},
		{"GET without a query", http.MethodGet, jsonType, "", 400, jsonType, false, "BAD_USER_INPUT"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			header := http.Header{"X-Api-Key": {key}}
			if row.accept != "" {
				header.Set("Accept", row.accept)
			}
			var res testenv.Response
			if row.method == http.MethodGet {
				res = env.Do(http.MethodGet, "/graphql?"+encodeQuery(row.body), header, nil)
			} else {
				header.Set("Content-Type", jsonType)
				res = env.Do(http.MethodPost, "/graphql", header, strings.NewReader(row.body))
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
				t.Fatalf("%d %s: not a JSON object: %v", res.Status, res.Body, err)
			}
			_, hasData := body["data"]
			if res.Status != row.wantStatus || res.Header.Get("Content-Type") != row.wantType || hasData != row.wantData {
				t.Errorf("got %d %s %s\nwant %d %s, data entry: %v", res.Status, res.Header.Get("Content-Type"), res.Body,
					row.wantStatus, row.wantType, row.wantData)
			}
			var errs []testenv.GraphQLError
			_ = json.Unmarshal(body["errors"], &errs)
			switch {
			case row.wantCode == "" && len(errs) > 0:
				t.Errorf("errors: %s", res.Body)
			case row.wantCode != "" && (len(errs) != 1 || errs[0].Code() != row.wantCode):
				t.Errorf("errors: %s, want one %s", res.Body, row.wantCode)
			}
			if row.wantStatus == http.StatusMethodNotAllowed && res.Header.Get("Allow") != http.MethodPost {
				t.Errorf("405 with Allow %q, want POST", res.Header.Get("Allow"))
			}
		})
	}
}

// encodeQuery URL-encodes "name=value&..." without splitting values on "=".
func encodeQuery(raw string) string {
	values := url.Values{}
	for pair := range strings.SplitSeq(raw, "&") {
		if name, value, ok := strings.Cut(pair, "="); ok {
			values.Set(name, value)
		}
	}
	return values.Encode()
}

// TestGraphQLRefusalsFollowAccept: answers written before gqlgen sees the
// request (over the rate limit, a body too large) use the media type the
// caller accepts and, as nothing ran, have no data entry.
func TestGraphQLRefusalsFollowAccept(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.RateLimit, c.RateLimitWindow = 1, time.Minute
	}})
	_, key := env.NewUser()
	header := http.Header{"X-Api-Key": {key}, "Content-Type": {jsonType}, "Accept": {graphQLResponseType}}
	big := `{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
	res := env.Do(http.MethodPost, "/graphql", header, strings.NewReader(big))
	want := `{"errors":[{"message":"Request body exceeds the limit of 1048576 bytes","extensions":{"code":"BAD_USER_INPUT"}}]}`
	if res.Status != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != graphQLResponseType || res.Body != want {
		t.Errorf("too large: %d %s %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
	env.Do(http.MethodPost, "/graphql", header, strings.NewReader(`{"query":"{ __typename }"}`))
	res = env.Do(http.MethodPost, "/graphql", header, strings.NewReader(`{"query":"{ __typename }"}`))
	want = `{"errors":[{"message":"Too many requests","extensions":{"code":"RATE_LIMITED"}}]}`
	if res.Status != http.StatusTooManyRequests || res.Header.Get("Content-Type") != graphQLResponseType || res.Body != want {
		t.Errorf("over the rate limit: %d %s %s", res.Status, res.Header.Get("Content-Type"), res.Body)
	}
}
