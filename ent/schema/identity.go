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

// Identity is a person's account at an OpenID Connect issuer: the pair
// (issuer, subject) of an access token's iss and sub claims. Each belongs to
// exactly one user, whose uploads its tokens act on.
type Identity struct {
	ent.Schema
}

// Fields of the Identity.
func (Identity) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewIdentity).
			Immutable().
			NotEmpty(),
		field.String("user_id").
			Immutable().
			NotEmpty(),
		field.String("issuer").
			Immutable().
			NotEmpty().
			Comment("The token's iss claim, exactly as the issuer writes it."),
		field.String("subject").
			Immutable().
			NotEmpty().
			Comment("The token's sub claim: unique and never reassigned within its issuer."),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
	}
}

// Edges of the Identity.
func (Identity) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).
			Ref("identities").
			Field("user_id").
			Unique().
			Required().
			Immutable(),
	}
}

// Indexes of the Identity.
func (Identity) Indexes() []ent.Index {
	return []ent.Index{
		// One user per identity, even when two first requests race.
		index.Fields("issuer", "subject").Unique(),
		index.Fields("user_id"),
	}
}

// Annotations of the Identity.
func (Identity) Annotations() []schema.Annotation {
	// Identities are managed from the command line and by sign-in, never over GraphQL.
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
