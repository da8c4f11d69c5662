package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// traceparentField is the W3C traceparent of the request that queued a row
// of background work (a purge, a delivery, a deletion job): the worker, on
// whichever instance, starts its span in that request's trace. Empty when
// tracing is off or the work was queued outside a traced request.
func traceparentField() ent.Field {
	return field.String("traceparent").
		Immutable().
		Default("").
		Annotations(entgql.Skip()).
		Comment("The W3C traceparent of the request that queued this work; empty when tracing is off.")
}
