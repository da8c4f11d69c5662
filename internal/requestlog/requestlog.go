// Package requestlog gives every request an id, echoed in the X-Request-Id
// response header and attached to every log line written while serving it,
// and logs one structured line per request. Headers are never logged: they
// carry API keys.
package requestlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Header carries the request id.
const Header = "X-Request-Id"

type ctxKey struct{}

// FromContext returns the request's id, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// NewContext returns ctx carrying the request id id: for background work
// done on a request's behalf (a deletion job), whose logs and audit
// events then name the request that started it.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Option configures Middleware.
type Option func(*options)

type options struct {
	// served holds, for each pattern registered without a method, the
	// label of each method it serves: built once, not on every request.
	served map[string]map[string]string
}

// Serves declares the methods the handler of pattern, registered on the
// ServeMux without a method (it answers other methods itself, as /graphql
// does), serves. Its requests in one of methods are labelled "METHOD
// pattern"; in any other method, "OTHER pattern".
func Serves(pattern string, methods ...string) Option {
	return func(o *options) {
		if o.served == nil {
			o.served = map[string]map[string]string{}
		}
		if o.served[pattern] == nil {
			o.served[pattern] = map[string]string{}
		}
		for _, method := range methods {
			o.served[pattern][method] = method + " " + pattern
		}
	}
}

// Unmatched labels requests that no route of the ServeMux took: unknown
// paths, methods a route does not serve, and CORS preflights answered
// before routing.
const Unmatched = "unmatched"

// Middleware assigns the id (keeping a well-formed one sent by a proxy in
// front), serves the request, and logs it with its route label (see
// Route). observe, if not nil, is called with the same facts (for
// metrics).
func Middleware(logger *slog.Logger, observe func(route string, status int, elapsed time.Duration), opts ...Option) func(http.Handler) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(Header)
			if !wellFormed(id) {
				id = newID()
			}
			w.Header().Set(Header, id)
			ctx := context.WithValue(r.Context(), ctxKey{}, id)
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			began := time.Now()
			req := r.WithContext(ctx)
			next.ServeHTTP(rec, req)
			elapsed := time.Since(began)
			route := o.route(req.Pattern, r.Method) // Pattern: set by the ServeMux on this very request
			if h := logger.Handler(); h.Enabled(ctx, slog.LevelInfo) {
				// A record of its own, without the caller's program counter
				// (Logger.LogAttrs captures it on every request; no log line
				// here needs a source).
				line := slog.NewRecord(began.Add(elapsed), slog.LevelInfo, "request", 0)
				line.AddAttrs(
					slog.String("method", r.Method),
					slog.String("route", route),
					slog.Int("status", rec.status),
					slog.Float64("duration_ms", Milliseconds(elapsed)),
					slog.Int64("bytes_in", max(r.ContentLength, 0)),
				)
				_ = h.Handle(ctx, line)
			}
			if observe != nil {
				observe(route, rec.status, elapsed)
			}
		})
	}
}

// route is the label of a request in the logs and the metrics: "METHOD
// /path", from the ServeMux pattern that took it. The set of labels is
// fixed by the routes, whatever requests arrive, so that the metrics'
// cardinality stays bounded: a pattern registered with a method is its
// own label ("GET /healthz"); one registered without gets the request's
// method if the route serves it ("POST /graphql"), else "OTHER /graphql";
// a request no route took is Unmatched.
func (o *options) route(pattern, method string) string {
	if pattern == "" {
		return Unmatched
	}
	if strings.ContainsRune(pattern, ' ') { // "GET /healthz"; mux patterns name no host here
		return pattern
	}
	if label, ok := o.served[pattern][method]; ok {
		return label
	}
	return "OTHER " + pattern
}

// Milliseconds is d in milliseconds, to the microsecond: how durations
// appear in the logs, under names ending in _ms.
func Milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// NewLogHandler returns a slog handler that adds the request id of the
// context, and its trace_id and span_id when a span is active, to every
// record before passing it to next.
func NewLogHandler(next slog.Handler) slog.Handler { return logHandler{next} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := FromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }

func wellFormed(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status written. It forwards Flush and
// Unwrap so that streaming and http.ResponseController keep working.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
