package httpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/rest"
)

// The extensions.code of a GraphQL mutation refused because of its
// Idempotency-Key.
const (
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	CodeIdempotencyKeyInUse  = "IDEMPOTENCY_KEY_IN_USE"
)

// restIdempotency is the REST delete's part in idempotency: a DELETE is
// the same request as another when it names the same upload; its answers
// are stored but for 401, 429 and 500 (nothing was done, or what was done
// is known only by its recorded effect: a retry runs again).
func restIdempotency(store *idempotency.Store, cfg Config) *idempotency.Route {
	return &idempotency.Route{
		Store:  store,
		Logger: cfg.Logger,
		Fingerprint: func(r *http.Request) (string, bool) {
			if r.Method != http.MethodDelete {
				return "", false // 405 whatever the key
			}
			return idempotency.Fingerprint(r.Method, rest.Path, r.Header.Get("X-Upload-Id")), true
		},
		Refuse: rest.WriteIdempotencyRefusal,
		// The 200 is known before the delete runs: it is stored with it.
		Predict: func(r *http.Request) *idempotency.Answer {
			return &idempotency.Answer{Status: http.StatusOK, ContentType: "application/json", Body: rest.SuccessBody(r.Header.Get("X-Upload-Id"))}
		},
		Final: func(status int, _ []byte) bool {
			return status < http.StatusInternalServerError && status != http.StatusUnauthorized && status != http.StatusTooManyRequests
		},
	}
}

// graphQLIdempotency is GraphQL's part: the key applies to an operation
// that is a mutation (see takeIdempotencyKey) and is ignored by queries.
// An answer is stored unless one of its errors is transient or about the
// credential (transientCodes): then the mutation runs again when retried,
// replaying the effects its fields recorded.
func graphQLIdempotency(store *idempotency.Store, cfg Config) *idempotency.Route {
	return &idempotency.Route{
		Store:  store,
		Logger: cfg.Logger,
		Refuse: func(w http.ResponseWriter, r *http.Request, status int, err error) {
			e := &graph.PublicError{Code: graph.CodeBadUserInput, Message: err.Error()}
			switch {
			case errors.Is(err, idempotency.ErrReused):
				e.Code = CodeIdempotencyKeyReused
			case errors.Is(err, idempotency.ErrInUse):
				e.Code = CodeIdempotencyKeyInUse
			case errors.Is(err, idempotency.ErrNarrower):
				e.Code = graph.CodeForbidden
			case !errors.Is(err, idempotency.ErrInvalidKey):
				e = graph.ErrInternal
			}
			writeGraphQLError(w, r, status, e)
		},
		Final: func(status int, body []byte) bool {
			if status != http.StatusOK {
				return false
			}
			var resp struct {
				Errors []struct {
					Extensions struct {
						Code string `json:"code"`
					} `json:"extensions"`
				} `json:"errors"`
			}
			if json.Unmarshal(body, &resp) != nil {
				return false
			}
			for _, e := range resp.Errors {
				if slices.Contains(transientCodes, e.Extensions.Code) {
					return false
				}
			}
			return true
		},
	}
}

// transientCodes mark a GraphQL answer that is not stored.
var transientCodes = []string{graph.CodeInternal, graph.CodeOperationTimeout, graph.CodeUnauthenticated, graph.CodeForbidden, CodeRateLimited}

// withFileDigests returns v with each uploaded file in it replaced by its
// name, size, content type and SHA-256: another file of the same name and
// size is another request. The file is read to its end, then rewound.
func withFileDigests(v any) (any, error) {
	switch v := v.(type) {
	case graphql.Upload:
		h := sha256.New()
		if _, err := v.File.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if _, err := io.Copy(h, v.File); err != nil {
			return nil, err
		}
		if _, err := v.File.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return map[string]any{"filename": v.Filename, "size": v.Size, "contentType": v.ContentType, "sha256": hex.EncodeToString(h.Sum(nil))}, nil
	case *graphql.Upload:
		if v == nil {
			return nil, nil
		}
		return withFileDigests(*v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			d, err := withFileDigests(e)
			if err != nil {
				return nil, err
			}
			out[k] = d
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			d, err := withFileDigests(e)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
		return out, nil
	default:
		return v, nil
	}
}

// takeIdempotencyKey takes the request's Idempotency-Key for a mutation:
// the same key and the same request are the same document, operation name
// and variables.
func takeIdempotencyKey(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation || !idempotency.Sent(ctx) {
		return next(ctx) // without a key, no fingerprint: what is off costs nothing
	}
	fileless, err := withFileDigests(oc.Variables)
	if err != nil {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "the uploaded file could not be read: %v", err))
	}
	variables, _ := json.Marshal(fileless) // map keys sorted: the same variables, the same bytes
	ctx, run := idempotency.BeginOperation(ctx, idempotency.Fingerprint(http.MethodPost, "/graphql", oc.RawQuery, oc.OperationName, string(variables)))
	if !run {
		return graphql.OneShot(&graphql.Response{}) // the wrapper answers instead
	}
	return next(ctx)
}
