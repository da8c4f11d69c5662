// Package tracing sends OpenTelemetry traces when OTEL_EXPORTER_OTLP_ENDPOINT
// is set, and costs nothing when it is not: no SDK is started, nothing is
// wrapped, and the nil *Tracer the rest of the service holds starts no span.
//
// A request's trace holds its HTTP span, the GraphQL operation and resolver
// spans, a span per SQL statement and transaction, the S3 calls, and the
// background work the request queued: each queued row (a purge, a webhook
// delivery, a deletion job) stores the request's W3C traceparent, and the
// worker that takes it, on whichever instance, starts its span as a child
// of that context.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName names the service in traces unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "uploads"

// Enabled reports whether the environment asks for traces: an OTLP
// endpoint is set, and neither OTEL_SDK_DISABLED nor OTEL_TRACES_EXPORTER=none
// turns them off.
func Enabled(lookupEnv func(string) (string, bool)) bool {
	get := func(k string) string { v, _ := lookupEnv(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(get("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Start starts the SDK from the standard OTEL_* variables, which the SDK
// and the OTLP exporter read from the process's environment: the endpoint
// and OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL (grpc, or
// http/protobuf by default), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (parentbased_always_on by
// default), and OTEL_BSP_* for batching. lookupEnv only chooses the
// protocol. Shut the provider down to send the spans still buffered.
func Start(ctx context.Context, lookupEnv func(string) (string, bool), version string) (*sdktrace.TracerProvider, error) {
	protocol, ok := lookupEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if !ok || protocol == "" {
		protocol, _ = lookupEnv("OTEL_EXPORTER_OTLP_PROTOCOL")
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s=%s: want grpc or http/protobuf", name, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // after: OTEL_SERVICE_NAME wins
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// No sampler given: the SDK reads OTEL_TRACES_SAMPLER(_ARG).
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// Propagator reads and writes the W3C traceparent header: incoming
// requests, webhook deliveries, and the rows of queued work.
var Propagator = propagation.TraceContext{}

// Tracer starts the service's own spans: purges, webhook deliveries,
// deletion jobs. The nil *Tracer starts none and allocates nothing.
type Tracer struct {
	tracer trace.Tracer
}

// New returns the Tracer of provider; nil for a nil provider (tracing off).
func New(provider trace.TracerProvider) *Tracer {
	if provider == nil {
		return nil
	}
	return &Tracer{tracer: provider.Tracer("github.com/safedelete/uploads")}
}

// none is the span of a nil Tracer: made once, so that returning it
// allocates nothing.
var none trace.Span = noop.Span{}

// Start starts a span as a child of ctx's. Set attributes only when the
// span IsRecording, and End it.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, none
	}
	return t.tracer.Start(ctx, name, opts...)
}

// Resume starts the span of background work in the trace of the request
// that queued it, as a child of the span whose traceparent the row stored
// (with none, the span starts a trace of its own). ctx is the worker's.
func (t *Tracer) Resume(ctx context.Context, traceparent, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, none
	}
	if sc := SpanContext(traceparent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return t.tracer.Start(ctx, name, append(opts, trace.WithSpanKind(trace.SpanKindConsumer))...)
}

// SpanContext is the span a stored traceparent names; invalid when it
// names none.
func SpanContext(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := Propagator.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}

// Traceparent is ctx's span as a W3C traceparent, "" when ctx has none
// (tracing off, or work outside a traced request).
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// Inject writes ctx's span into an outgoing request's traceparent header
// (and tracestate); with no span, it writes nothing.
func Inject(ctx context.Context, header http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		Propagator.Inject(ctx, propagation.HeaderCarrier(header))
	}
}
