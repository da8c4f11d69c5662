package rest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/rest"
)

var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(rest.OpenAPI)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// validateOpenAPI checks that a response the contract tests received is
// one the OpenAPI document describes: status, headers and body.
func validateOpenAPI(t *testing.T, res testenv.Response) {
	t.Helper()
	router, err := openAPIRouter()
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	route, params, err := router.FindRoute(res.Request)
	if err != nil {
		t.Fatalf("OpenAPI document has no route for %s %s: %v", res.Request.Method, res.Request.URL.Path, err)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    res.Request,
			PathParams: params,
			Route:      route,
			Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: res.Status,
		Header: res.Header,
		Body:   io.NopCloser(bytes.NewReader([]byte(res.Body))),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, // a status the document does not list is an error
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%d %s does not match the OpenAPI document: %v", res.Status, res.Body, err)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	res := env.Do(http.MethodGet, "/openapi.json", nil, nil)
	if res.Status != 200 || res.Header.Get("Content-Type") != "application/json" || res.Body != string(rest.OpenAPI) {
		t.Fatalf("GET /openapi.json: %d %s", res.Status, res.Header.Get("Content-Type"))
	}
	if _, err := openAPIRouter(); err != nil {
		t.Fatalf("the served document is not valid OpenAPI: %v", err)
	}
}

// TestOpenAPISecurity: every way the endpoint accepts a key is in the
// document. A request that carries the key only as x-api-key, or only as
// Authorization: Bearer, satisfies the document's security requirement; one
// with neither does not. Wrong methods are answered whatever the
// credentials, so their operations require none.
func TestOpenAPISecurity(t *testing.T) {
	t.Parallel()
	router, err := openAPIRouter()
	if err != nil {
		t.Fatal(err)
	}
	// What the document's schemes say a request must carry.
	carries := func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		scheme := in.SecurityScheme
		switch {
		case scheme.Type == "apiKey" && scheme.In == "header" && in.RequestValidationInput.Request.Header.Get(scheme.Name) != "":
			return nil
		case scheme.Type == "http" && scheme.Scheme == "bearer" &&
			strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer "):
			return nil
		}
		return errors.New("no credentials for " + in.SecuritySchemeName)
	}
	for _, c := range []struct {
		name, method string
		header       http.Header
		accepted     bool
	}{
		{"x-api-key", http.MethodDelete, http.Header{"X-Api-Key": {"ukey_x"}}, true},
		{"Authorization: Bearer", http.MethodDelete, http.Header{"Authorization": {"Bearer ukey_x"}}, true},
		{"no key", http.MethodDelete, http.Header{}, false},
		{"a wrong method without a key", http.MethodGet, http.Header{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(c.method, "http://127.0.0.1/delete-upload-api", nil)
			req.Header = c.header.Clone()
			req.Header.Set("X-Upload-Id", "upl_4c0a85f67aa74ecb95a9494a96e4a327")
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: carries},
			})
			if (err == nil) != c.accepted {
				t.Errorf("accepted = %v (%v), want %v", err == nil, err, c.accepted)
			}
		})
	}
}
