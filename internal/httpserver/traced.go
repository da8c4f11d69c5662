package httpserver

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/internal/tracing"
)

// traceRequests makes a server span of each request, in the trace its
// traceparent header names if it has one. With no tracer it returns h
// itself: tracing off adds nothing to a request. Probes and scrapes
// (/healthz, /readyz, /metrics) are not traced: they would bury the
// requests that matter.
func traceRequests(tracer trace.TracerProvider, h http.Handler) http.Handler {
	if tracer == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(tracer),
		otelhttp.WithPropagators(tracing.Propagator),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + r.URL.Path
		}),
	)
}
