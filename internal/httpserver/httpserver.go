// Package httpserver puts the service's routes in one place: the GraphQL
// API and its playground, the REST shim and its OpenAPI document, and
// health checks.
package httpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/graph/generated"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/auth"
	"github.com/safedelete/uploads/internal/gqllimit"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/playground"
	"github.com/safedelete/uploads/internal/querycache"
	"github.com/safedelete/uploads/internal/ratelimit"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/tracing"
	"github.com/safedelete/uploads/rest"
)

// Config is what the routes need.
type Config struct {
	// Keys checks API keys.
	Keys     *apikey.Authenticator
	Resolver *graph.Resolver
	// Tokens are the OpenID Connect access tokens accepted besides API
	// keys; nil for none.
	Tokens          *auth.Tokens
	Logger          *slog.Logger
	Introspection   bool
	ComplexityLimit int
	DepthLimit      int
	// AllowedOrigins may call the API from a browser page; "*" allows any.
	AllowedOrigins []string
	// Limiter limits requests per API key; nil for no limit.
	Limiter *ratelimit.Limiter
	Metrics *metrics.Metrics
	// Ready are the checks of /readyz, by name.
	Ready map[string]func(context.Context) error
	// BodyTimeout bounds the time a request body other than an upload may
	// take to arrive; UploadIdle bounds each pause in an upload's body.
	// Zero sets no bound.
	BodyTimeout, UploadIdle time.Duration
	// GraphQLTimeout bounds the work of one GraphQL operation, all its
	// root fields but uploadFile (which UPLOAD_TIMEOUT bounds). Zero sets
	// no bound.
	GraphQLTimeout time.Duration
	// Idempotency keeps the answers of requests sent with an
	// Idempotency-Key; nil ignores the header.
	Idempotency *idempotency.Store
	// ReceiptKeys are the keys of deletion receipts, whose public half is
	// served at /.well-known/jwks.json; nil serves none.
	ReceiptKeys *receipt.Keys
	// Tracer, when set, traces each request (honouring an incoming
	// traceparent) and each GraphQL operation and resolver; nil wraps
	// nothing (traced.go).
	Tracer trace.TracerProvider
}

// multipartOverhead is the room a multipart request needs beyond its file
// (the operations and map parts, boundaries, part headers).
const multipartOverhead = 1 << 20

// NewHandler returns the service's HTTP handler: every route in one place.
func NewHandler(cfg Config) http.Handler {
	authenticate := auth.Middleware(cfg.Keys, cfg.Tokens, cfg.Logger)
	playgroundHandler := playground.Handler()
	maxRequest := cfg.Resolver.MaxUploadSize() + multipartOverhead

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", playgroundHandler)
	mux.Handle("GET /playground/", playgroundHandler)
	mux.Handle("GET /favicon.ico", playgroundHandler)
	mux.Handle("GET /openapi.json", rest.OpenAPIHandler())
	var graphQLServer, deleteUpload http.Handler = newGraphQLServer(cfg, maxRequest), rest.NewDeleteUploadHandler(traceResolver(tracing.New(cfg.Tracer), cfg.Resolver.Mutation()), cfg.Logger)
	if cfg.Idempotency != nil {
		graphQLServer = graphQLIdempotency(cfg.Idempotency, cfg).Wrap(graphQLServer)
		deleteUpload = restIdempotency(cfg.Idempotency, cfg).Wrap(deleteUpload)
	}
	graphQL := cfg.Limiter.Wrap(graphQLServer, func(w http.ResponseWriter, r *http.Request) {
		writeGraphQLError(w, r, http.StatusTooManyRequests, &graph.PublicError{Code: CodeRateLimited, Message: "Too many requests"})
	})
	graphQL = gqllimit.MultipartMap(MaxOperationBytes, func(w http.ResponseWriter, r *http.Request, message string) {
		writeGraphQLError(w, r, http.StatusBadRequest, &graph.PublicError{Code: graph.CodeBadUserInput, Message: message})
	}, graphQL)
	mux.Handle("/graphql", checkWebSocketOrigin(cfg.AllowedOrigins, streamWrites(limitBody(maxRequest, cfg.Resolver.MaxUploadSize(), authenticate(graphQL)))))
	mux.Handle(rest.Path, authenticate(cfg.Limiter.Wrap(deleteUpload, rest.WriteTooManyRequests)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /readyz", readyHandler(cfg.Ready, cfg.Logger))
	if cfg.ReceiptKeys != nil {
		mux.Handle("GET "+receipt.JWKSPath, cfg.ReceiptKeys.JWKSHandler())
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	var h http.Handler = mux
	if len(cfg.AllowedOrigins) > 0 { // none: no cross-origin browser access at all
		h = corsMiddleware(cfg.AllowedOrigins).Handler(h)
	}
	h = boundBodyReads(cfg.BodyTimeout, cfg.UploadIdle, h)
	h = rejectAmbiguousFraming(h)
	// The routes registered without a method, and the methods they serve.
	h = requestlog.Middleware(cfg.Logger, cfg.Metrics.ObserveRequest,
		requestlog.Serves("/graphql", http.MethodGet, http.MethodPost, http.MethodOptions),
		requestlog.Serves(rest.Path, http.MethodDelete))(h)
	return traceRequests(cfg.Tracer, h) // outermost: the request log line carries the trace
}

// ReadyCacheTTL is how long /readyz answers with its last result. The
// route needs no key and has no rate limit: without the cache, every call
// would cost a database query and an S3 request.
const ReadyCacheTTL = time.Second

// readyHandler answers 200 when every check passes and 503 otherwise,
// naming each check's state (never its error, which may carry internals;
// that is logged).
func readyHandler(checks map[string]func(context.Context) error, logger *slog.Logger) http.Handler {
	rd := &readiness{checks: checks, logger: logger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ready, status := rd.result(r.Context())
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": status})
	})
}

// readiness runs the checks at most once per ReadyCacheTTL. Callers that
// arrive while they run wait for them and share their result.
type readiness struct {
	checks map[string]func(context.Context) error
	logger *slog.Logger

	mu      sync.Mutex
	checked time.Time // when the last check ended
	ready   bool
	status  map[string]string // never changed once returned
}

func (rd *readiness) result(ctx context.Context) (bool, map[string]string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if time.Since(rd.checked) < ReadyCacheTTL {
		return rd.ready, rd.status
	}
	// Not bound to this caller: others wait for the result.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	status, ready := map[string]string{}, true
	for name, check := range rd.checks {
		status[name] = "ok"
		if err := check(ctx); err != nil {
			rd.logger.WarnContext(ctx, "readiness check failed", "check", name, "error", err)
			status[name], ready = "unavailable", false
		}
	}
	rd.ready, rd.status, rd.checked = ready, status, time.Now()
	return ready, status
}

// corsMiddleware lets browser pages on allowed origins call the API. It
// wraps every route, so that error responses (401, 404, ...) carry the CORS
// headers too and a page can read them.
func corsMiddleware(origins []string) *cors.Cors {
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodDelete, http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{"x-api-key", "x-upload-id", "content-type", "authorization", "x-request-id", "idempotency-key"},
		ExposedHeaders: []string{"X-Request-Id", "Retry-After", idempotency.ReplayedHeader},
		MaxAge:         600,
	})
}

// newGraphQLServer configures gqlgen for production: explicit transports, a
// parsed-query cache, persisted queries, and limits on what one operation
// may cost.
func newGraphQLServer(cfg Config, maxRequest int64) *handler.Server {
	schema := generated.Config{Resolvers: cfg.Resolver, Schema: graph.ServedSchema()}
	executable := generated.NewExecutableSchema(schema)
	srv := handler.New(executable)
	srv.AddTransport(transport.Options{})
	if cfg.Resolver.Events() != nil {
		addSubscriptionTransports(srv, cfg) // before graphQLOverHTTP: SSE's POSTs are JSON too
	}
	srv.AddTransport(graphQLOverHTTP{}) // GET and POST, in place of gqlgen's
	srv.AddTransport(transport.MultipartForm{
		MaxUploadSize: maxRequest,
		MaxMemory:     32 << 20, // larger files spill to temporary files
	})
	// Documents with their ids written in are validated once per shape.
	srv.SetQueryCache(querycache.New(executable.Schema(), 1000))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(gqllimit.Inputs{MaxStringBytes: MaxInputStringBytes, MaxDepth: MaxInputDepth})
	srv.Use(gqllimit.Limits{MaxDepth: cfg.DepthLimit, MaxFields: cfg.ComplexityLimit, MaxMutationFields: MaxMutationFields})
	// Every list priced by its page times its parents, every filter by its
	// terms, variables expanded (in place of gqlgen's complexity limit,
	// which counted a list once and expanded fragments one by one).
	srv.Use(operationCost(cfg.ComplexityLimit))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		// A subscription lasts as long as its reader wants it.
		if cfg.GraphQLTimeout > 0 && graphql.GetOperationContext(ctx).Operation.Operation != ast.Subscription {
			ctx = graph.WithOperationDeadline(ctx, time.Now().Add(cfg.GraphQLTimeout))
		}
		return next(ctx)
	})
	srv.AroundOperations(takeIdempotencyKey)
	srv.AroundRootFields(func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		// Storing a file takes as long as the file needs, within
		// UPLOAD_TIMEOUT; every other root field shares the deadline.
		if graphql.GetRootFieldContext(ctx).Field.Name == "uploadFile" {
			return next(ctx)
		}
		ctx, cancel := graph.WithDeadline(ctx)
		defer cancel() // the field is resolved, its children included, when next returns
		return next(ctx)
	})
	if tracer := tracing.New(cfg.Tracer); tracer != nil {
		srv.Use(tracing.GraphQL{Tracer: tracer})
	}
	srv.SetErrorPresenter(graph.ErrorPresenter(cfg.Logger))
	srv.SetRecoverFunc(graph.RecoverFunc(cfg.Logger))
	return srv
}

// Bounds on one GraphQL operation beyond depth and complexity.
const (
	// MaxMutationFields is how many mutation fields one operation may run.
	MaxMutationFields = 10
	// MaxInputStringBytes bounds every input string: ids, filters, cursors.
	MaxInputStringBytes = 4096
	// MaxInputDepth bounds how deeply input values nest (where: {and: [...]}).
	MaxInputDepth = 16
)

// CodeRateLimited is the extensions.code of a GraphQL request over the rate limit.
const CodeRateLimited = "RATE_LIMITED"

// writeGraphQLError answers a GraphQL request refused before gqlgen saw it
// with one error, in the media type the caller accepts, without a data entry
// (nothing was executed).
func writeGraphQLError(w http.ResponseWriter, r *http.Request, status int, e *graph.PublicError) {
	writeResponse(w, responseMediaType(r.Header.Get("Accept")), status,
		requestErrorsResponse{Errors: gqlerror.List{publicGQLError(e)}})
}

// MaxOperationBytes bounds a GraphQL request that carries no file: no
// legitimate operation comes near it.
const MaxOperationBytes = 1 << 20

// limitBody answers an oversized request with a clear GraphQL error before
// reading it, instead of gqlgen's generic parse failures. Bodies of unknown
// length are cut off at the limit.
func limitBody(maxRequest, maxFile int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, tooLarge := int64(MaxOperationBytes), bodyTooLarge(MaxOperationBytes)
		if isUpload(r) {
			limit, tooLarge = maxRequest, graph.UploadTooLarge(maxFile)
		}
		if r.ContentLength > limit {
			writeGraphQLError(w, r, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// MaxHeaderBytes bounds a request's headers; larger ones get 431.
const MaxHeaderBytes = 64 << 10

// NewServer wraps h with the timeouts a public server needs. Writes get
// no deadline because uploads of large files take as long as they take;
// the read header timeout guards against slow-loris clients, and the
// handler bounds reading bodies (see boundBodyReads), which ReadTimeout
// cannot do without cutting large uploads. Serve it on a listener wrapped
// by Listener.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       withScanner,
	}
}
