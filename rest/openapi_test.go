package rest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
	env := testenv.New(t, testenv.Options{})
	res := env.Do(http.MethodGet, "/openapi.json", nil, nil)
	if res.Status != 200 || res.Header.Get("Content-Type") != "application/json" || res.Body != string(rest.OpenAPI) {
		t.Fatalf("GET /openapi.json: %d %s", res.Status, res.Header.Get("Content-Type"))
	}
	if _, err := openAPIRouter(); err != nil {
		t.Fatalf("the served document is not valid OpenAPI: %v", err)
	}
}
