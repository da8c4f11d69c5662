package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/safedelete/uploads/graph"
)

// The media types of a GraphQL response (GraphQL over HTTP, §6.4).
const (
	mediaTypeJSON            = "application/json"
	mediaTypeGraphQLResponse = "application/graphql-response+json"
)

// graphQLOverHTTP serves GraphQL requests sent as POST with a JSON body or
// as GET with URL parameters, as the GraphQL over HTTP specification
// (https://graphql.github.io/graphql-over-http/draft/) says:
//   - the response is application/graphql-response+json when Accept prefers
//     it, and application/json otherwise;
//   - a request that is not a well-formed GraphQL-over-HTTP request (a body
//     that is not JSON, no query, a parameter of the wrong type) is 400;
//   - a request error (a document that does not parse or validate, variables
//     that do not coerce, a limit exceeded) is 200 with application/json and
//     400 with application/graphql-response+json, and has no data entry, as
//     the GraphQL specification says of errors raised before execution;
//   - GET runs queries only: anything else is 405 with Allow: POST.
//
// It replaces gqlgen's POST and GET transports, which answer request errors
// with 422 under application/json and always send "data": null, and offer no
// setting for either.
type graphQLOverHTTP struct{}

var _ graphql.Transport = graphQLOverHTTP{}

func (graphQLOverHTTP) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	if r.Method == http.MethodGet {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && err == nil && mediaType == mediaTypeJSON
}

func (graphQLOverHTTP) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	mediaType := responseMediaType(r.Header.Get("Accept"))
	// Every error goes through the error presenter, which gives it its code.
	reject := func(ctx context.Context, status int, errs ...*gqlerror.Error) {
		resp := exec.DispatchError(ctx, errs)
		writeResponse(w, mediaType, status, requestErrorsResponse{Errors: resp.Errors, Extensions: resp.Extensions})
	}
	start := graphql.Now()
	params, status, err := readParams(r)
	if err != nil {
		reject(ctx, status, err)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusOK
		if mediaType == mediaTypeGraphQLResponse {
			status = http.StatusBadRequest
		}
		reject(graphql.WithOperationContext(ctx, opCtx), status, errs...)
		return
	}
	if r.Method == http.MethodGet && opCtx.Operation.Operation != ast.Query {
		// A GET must be safe to repeat and to prefetch (§8.2.1).
		w.Header().Set("Allow", http.MethodPost)
		reject(graphql.WithOperationContext(ctx, opCtx), http.StatusMethodNotAllowed,
			gqlerror.Errorf("GET runs queries only; send a %s with POST", opCtx.Operation.Operation))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeResponse(w, mediaType, http.StatusOK, responses(ctx))
}

// readParams reads a request's query, operationName, variables and
// extensions; when it cannot, it returns the status to answer with.
func readParams(r *http.Request) (*graphql.RawParams, int, *gqlerror.Error) {
	params := &graphql.RawParams{}
	if r.Method == http.MethodGet {
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, http.StatusBadRequest, gqlerror.Errorf("The URL's parameters could not be decoded: %v", err)
		}
		params.Query = query.Get("query")
		params.OperationName = query.Get("operationName")
		for name, into := range map[string]*map[string]any{"variables": &params.Variables, "extensions": &params.Extensions} {
			if value := query.Get(name); value != "" {
				if err := decodeJSON(strings.NewReader(value), into); err != nil {
					return nil, http.StatusBadRequest, gqlerror.Errorf("The %s parameter is not a JSON object: %v", name, err)
				}
			}
		}
	} else {
		body, err := io.ReadAll(r.Body)
		if maxBytes := (*http.MaxBytesError)(nil); errors.As(err, &maxBytes) {
			return nil, http.StatusRequestEntityTooLarge, publicGQLError(bodyTooLarge(maxBytes.Limit))
		} else if err != nil {
			return nil, http.StatusBadRequest, gqlerror.Errorf("The request body could not be read: %v", err)
		}
		if err := decodeJSON(bytes.NewReader(body), params); err != nil {
			return nil, http.StatusBadRequest, gqlerror.Errorf("The request body is not a GraphQL request in JSON: %v", err)
		}
	}
	// A persisted query's hash stands in for its text.
	if params.Query == "" && params.Extensions["persistedQuery"] == nil {
		return nil, http.StatusBadRequest, gqlerror.Errorf("The request has no query")
	}
	return params, 0, nil
}

// decodeJSON decodes one JSON value, keeping numbers as json.Number as
// gqlgen's transports do, so that large integers survive.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	return dec.Decode(v)
}

// responseMediaType chooses the response's media type from an Accept
// header: the supported type of highest quality, the first listed among
// equals; wildcards stand for application/json. With no Accept, or one
// naming neither type, it is application/json, as the specification
// allows for clients written before application/graphql-response+json.
func responseMediaType(accept string) string {
	chosen, chosenQuality := mediaTypeJSON, 0.0
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		quality := 1.0
		if q, ok := params["q"]; ok {
			if quality, err = strconv.ParseFloat(q, 64); err != nil {
				continue
			}
		}
		var candidate string
		switch mediaType {
		case mediaTypeGraphQLResponse:
			candidate = mediaTypeGraphQLResponse
		case mediaTypeJSON, "application/*", "*/*":
			candidate = mediaTypeJSON
		default:
			continue
		}
		if quality > chosenQuality {
			chosen, chosenQuality = candidate, quality
		}
	}
	return chosen
}

// requestErrorsResponse is a response to a request that was never executed:
// errors and extensions, no data entry.
type requestErrorsResponse struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func writeResponse(w http.ResponseWriter, mediaType string, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		// Only a resolver's value that JSON cannot hold gets here.
		status, b = http.StatusInternalServerError, []byte(`{"errors":[{"message":"Internal server error","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// publicGQLError is a public error as a GraphQL error.
func publicGQLError(e *graph.PublicError) *gqlerror.Error {
	return &gqlerror.Error{Message: e.Message, Extensions: map[string]any{"code": e.Code}}
}

// bodyTooLarge is the error of a request body over limit bytes.
func bodyTooLarge(limit int64) *graph.PublicError {
	return &graph.PublicError{
		Code:    graph.CodeBadUserInput,
		Message: fmt.Sprintf("Request body exceeds the limit of %d bytes", limit),
	}
}
