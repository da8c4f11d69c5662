package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// AuditChain is the head of one owner's chain of audit events: the last
// event's place and hash. Every transaction that records events for the
// owner takes its row's lock first (internal/audit), so that two of them
// never chain onto the same event, and moves it on before it commits; it
// also lets verify see events removed from the end of a chain.
type AuditChain struct {
	ent.Schema
}

// Fields of the AuditChain.
func (AuditChain) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			StorageKey("owner_id").
			Immutable().
			NotEmpty().
			Comment("The owner's id: one chain per owner."),
		field.Int64("seq").
			Default(0).
			Comment("The last event's seq; 0 before the first."),
		field.Bytes("hash").
			Optional().
			Comment("The last event's hash; empty before the first."),
		field.Int64("pruned_seq").
			Default(0).
			Comment("The highest seq pruned by AUDIT_RETENTION: events up to it may be missing."),
	}
}

// Annotations of the AuditChain.
func (AuditChain) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
