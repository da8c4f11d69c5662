package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// IdempotencyKey is a caller's Idempotency-Key and what became of the
// request that first carried it (internal/idempotency). It is taken before
// the request runs (a lease: locked_until), marked in the same transaction
// as each effect the request has (effects), and given the request's answer
// once it is final (status, content_type, body), which later requests with
// the same key and the same request get back byte for byte.
type IdempotencyKey struct {
	ent.Schema
}

// Fields of the IdempotencyKey.
func (IdempotencyKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("user_id").
			Immutable().
			NotEmpty().
			Comment("Keys belong to the caller's user: two users may send the same key."),
		field.String("key").
			Immutable().
			NotEmpty().
			MaxLen(255),
		field.String("fingerprint").
			Immutable().
			NotEmpty().
			Comment("SHA-256 of the request (method, path, upload id header or GraphQL document, operation name and variables): the same key with another request is refused."),
		field.String("holder").
			Default("").
			Comment("The claim that holds the key (a random token, replaced by a takeover): a claim whose lease was taken over writes nothing more."),
		field.Time("locked_until").
			Comment("While the request runs: until when its instance holds the key. A retry after it runs the request again, resuming from effects."),
		field.Bytes("effects").
			Optional().
			Nillable().
			Comment("JSON: what the request's root fields did, each written in the transaction of its effect, so that a retry after a crash replays the effect instead of doing it again."),
		field.String("scopes").
			Default("").
			Comment("The scopes of the credential whose request made the answer: it is replayed only to a credential with all of them (it may carry a webhook secret)."),
		field.Int("status").
			Default(0).
			Comment("The stored answer's HTTP status; 0 while there is none."),
		field.String("content_type").
			Default(""),
		field.Bytes("body").
			Optional().
			Nillable().
			Sensitive().
			Comment("The stored answer's body, sealed under the webhook key: an answer may carry a signing secret."),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
	}
}

// Indexes of the IdempotencyKey.
func (IdempotencyKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id", "key").Unique(),
		// The janitor prunes by age.
		index.Fields("created_at"),
	}
}

// Annotations of the IdempotencyKey.
func (IdempotencyKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
