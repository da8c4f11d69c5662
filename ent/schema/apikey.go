package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/safedelete/uploads/internal/ids"
)

// APIKey authenticates a user. Only the SHA-256 digest of the secret is
// stored; the secret is shown once, when the key is created.
type APIKey struct {
	ent.Schema
}

// Fields of the APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewAPIKey).
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty(),
		field.String("prefix").
			Immutable().
			NotEmpty().
			Comment("Non-secret start of the key, so that people can tell their keys apart."),
		field.String("digest").
			Immutable().
			Unique().
			NotEmpty().
			Sensitive().
			Comment("Lowercase hex SHA-256 of the whole secret."),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
		field.Strings("scopes").
			Optional().
			Comment("What the key may do (scope names); absent means every scope, so keys made before scopes existed keep working."),
		field.Time("expires_at").
			Optional().
			Nillable().
			Immutable().
			Comment("After this the key is refused everywhere, like a revoked one; absent means never."),
		field.Time("last_used_at").
			Optional().
			Nillable(),
		field.Time("revoked_at").
			Optional().
			Nillable(),
	}
}

// Edges of the APIKey.
func (APIKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("owner", User.Type).
			Ref("api_keys").
			Field("owner_id").
			Unique().
			Required().
			Immutable(),
	}
}

// Indexes of the APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("owner_id"),
	}
}

// Annotations of the APIKey.
func (APIKey) Annotations() []schema.Annotation {
	// Keys are managed from the command line and never exposed over GraphQL.
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
