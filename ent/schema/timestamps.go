package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// timestamps adds created_at and updated_at; GraphQL shows them as
// createdAt and updatedAt, and connections can be ordered by creation.
type timestamps struct {
	mixin.Schema
}

// Fields of the timestamps mixin.
func (timestamps) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Immutable().
			Default(time.Now).
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("updated_at").
			Default(time.Now).
			UpdateDefault(time.Now),
	}
}
