package httpserver

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/tracing"
	"github.com/safedelete/uploads/rest"
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

// traceResolver gives the REST route's call of the deleteUpload resolver
// the span GraphQL's gets from the gqlgen extension; with no tracer it
// returns the resolver itself.
func traceResolver(tracer *tracing.Tracer, mutation rest.DeleteUploader) rest.DeleteUploader {
	if tracer == nil {
		return mutation
	}
	return tracedDeleteUploader{tracer: tracer, next: mutation}
}

type tracedDeleteUploader struct {
	tracer *tracing.Tracer
	next   rest.DeleteUploader
}

func (t tracedDeleteUploader) DeleteUpload(ctx context.Context, id string) (*model.DeleteUploadPayload, error) {
	ctx, span := t.tracer.Start(ctx, "Mutation.deleteUpload")
	defer span.End()
	return t.next.DeleteUpload(ctx, id)
}
