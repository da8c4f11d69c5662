package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// RetiredIdentity remembers that the identity of a deleted user existed, so
// that with AUTH_CREATE_USERS its tokens do not make a new user by
// themselves: an operator lets the person back in (users create --subject).
// Only a digest is kept, never the issuer or subject.
type RetiredIdentity struct {
	ent.Schema
}

// Fields of the RetiredIdentity.
func (RetiredIdentity) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			Immutable().
			NotEmpty().
			Comment("Lowercase hex SHA-256 of issuer, a NUL byte and subject."),
		field.Time("retired_at").
			Immutable().
			Default(time.Now),
	}
}

// Annotations of the RetiredIdentity.
func (RetiredIdentity) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
