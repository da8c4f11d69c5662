package tracing

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL is the gqlgen extension that traces each operation and each
// field that runs a resolver (fields read off a loaded entity get none).
//
// It is ours rather than otelgqlgen's, which records the whole document
// and every field's arguments as attributes: a secret written into a
// document (a webhook secret, a key) would reach the collector. Spans here
// carry the operation's type and name and the fields' paths, never values.
type GraphQL struct {
	Tracer *Tracer
}

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
	graphql.FieldInterceptor
} = GraphQL{}

// ExtensionName names the extension to gqlgen.
func (GraphQL) ExtensionName() string { return "OpenTelemetry" }

// Validate accepts every schema.
func (GraphQL) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse traces one operation (each response of a subscription).
func (g GraphQL) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	kind, name := "operation", oc.OperationName
	if oc.Operation != nil {
		kind = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	spanName := "graphql." + kind
	if name != "" {
		spanName += " " + name
	}
	ctx, span := g.Tracer.Start(ctx, spanName, trace.WithAttributes(
		attribute.String("graphql.operation.type", kind),
		attribute.String("graphql.operation.name", name),
	))
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		span.SetStatus(codes.Error, "graphql errors")
	}
	return resp
}

// InterceptField traces a field that runs a resolver.
func (g GraphQL) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver || fc.Field.Field == nil || fc.Field.ObjectDefinition == nil {
		return next(ctx)
	}
	ctx, span := g.Tracer.Start(ctx, fc.Field.ObjectDefinition.Name+"."+fc.Field.Name, trace.WithAttributes(
		attribute.String("graphql.field.path", fc.Path().String()),
	))
	defer span.End()
	res, err := next(ctx)
	if err != nil || len(graphql.GetFieldErrors(ctx, fc)) > 0 {
		span.SetStatus(codes.Error, "field error")
	}
	return res, err
}
