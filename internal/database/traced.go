package database

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"strings"

	"entgo.io/ent/dialect"
	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// openDB opens the pool of connector; with a tracer, through otelsql,
// which makes a span of each statement, BEGIN, COMMIT and ROLLBACK.
//
// Only statements inside a span are traced: those of a request or of a
// job resumed from its request's trace. The workers' polls (claims that
// find nothing, every PURGE_POLL_INTERVAL) would otherwise each be a trace
// of one span. Statements are recorded as sent, with their placeholders;
// arguments (keys' digests, idempotency keys) never are.
func openDB(connector sqldriver.Connector, engine string, tracer trace.TracerProvider) *sql.DB {
	if tracer == nil {
		return sql.OpenDB(connector)
	}
	system := "sqlite"
	if engine == dialect.Postgres {
		system = "postgresql"
	}
	return otelsql.OpenDB(connector,
		otelsql.WithTracerProvider(tracer),
		otelsql.WithAttributes(attribute.String("db.system.name", system)),
		otelsql.WithSpanNameFormatter(func(_ context.Context, method otelsql.Method, query string) string {
			verb, _, _ := strings.Cut(strings.TrimSpace(query), " ")
			if verb == "" {
				return string(method)
			}
			return "sql " + strings.ToUpper(verb)
		}),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []sqldriver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
	)
}
