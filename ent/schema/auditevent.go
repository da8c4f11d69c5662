package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is one change in an upload's life, written in the transaction
// that makes the change: an event is never recorded for a change that
// rolled back, and no committed change goes unrecorded. It holds ids and
// names, never a secret.
type AuditEvent struct {
	ent.Schema
}

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("upload_id").
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty(),
		field.Enum("kind").
			Values("CREATED", "DELETED", "RESTORED", "PURGED", "EXPIRED", "HOLD_PLACED", "HOLD_RELEASED").
			Immutable(),
		field.String("actor").
			Immutable().
			NotEmpty().
			Comment("The API key's id (never the key), or janitor, or cli."),
		field.Enum("via").
			Values("REST", "GRAPHQL", "CLI", "JANITOR", "PURGER").
			Immutable(),
		field.String("request_id").
			Immutable().
			Default(""),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
		// The chain (internal/audit/chain.go): zero and empty on events
		// written before it, which verify reports as an unchained prefix.
		field.Int64("seq").
			Optional().
			Immutable().
			Comment("The event's place in its owner's chain: 1, 2, 3 …; 0 before the chain."),
		field.Bytes("prev_hash").
			Optional().
			Immutable().
			Comment("The hash of the owner's event before this one (32 zero bytes for the first): after pruning, the first kept event's is where verify starts."),
		field.Bytes("hash").
			Optional().
			Immutable().
			Comment("SHA-256 of prev_hash and the event's fields, encoded as internal/audit/chain.go says."),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		// A user's events, newest first; one upload's; and the oldest, to prune.
		index.Fields("owner_id", "id"),
		index.Fields("owner_id", "upload_id"),
		index.Fields("created_at"),
	}
}

// Annotations of the AuditEvent.
func (AuditEvent) Annotations() []schema.Annotation {
	// Newest first, paged by id: the GraphQL type is written by hand
	// (graph/schema.graphqls), since its ids are numbers (the order of
	// commits, whichever instance wrote them) and the other types' are not.
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
