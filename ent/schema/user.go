package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/safedelete/uploads/internal/ids"
)

// User owns API keys and uploads.
type User struct {
	ent.Schema
}

// Mixin adds created_at and updated_at.
func (User) Mixin() []ent.Mixin {
	return []ent.Mixin{timestamps{}}
}

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewUser).
			Immutable().
			NotEmpty(),
		field.String("email").
			Optional().
			Nillable().
			Unique().
			NotEmpty().
			Comment("Absent for a user made at sign-in from a token without an email claim."),
		field.Time("held_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("While later than now, a hold on the user keeps all their uploads, those created later too (internal/holds)."),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("api_keys", APIKey.Type).
			Annotations(entgql.Skip()),
		edge.To("identities", Identity.Type).
			Annotations(entgql.Skip()),
		edge.To("uploads", Upload.Type).
			Annotations(entgql.RelayConnection()),
	}
}

// Annotations of the User.
func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{
		// Users are reached through `viewer` only: no root query lists them,
		// and no mutation is generated.
		entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}
