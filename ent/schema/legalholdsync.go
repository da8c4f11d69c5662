package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LegalHoldSync is the durable note that an upload's object may need its
// S3 legal hold turned on or off: written in the transaction that places or
// releases a hold (or stores an upload of a held owner), removed once the
// object's every version says what the holds say (internal/objectlock). A
// hold with an until keeps its notes until then, due at that time, to turn
// the lock off when the hold lapses. On a bucket without Object Lock the
// note is dropped at its first attempt.
type LegalHoldSync struct {
	ent.Schema
}

// Fields of the LegalHoldSync.
func (LegalHoldSync) Fields() []ent.Field {
	return []ent.Field{
		field.String("upload_id").
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty(),
		field.String("bucket").
			Immutable().
			NotEmpty(),
		field.String("object_key").
			Immutable().
			NotEmpty(),
		field.Int("attempts").
			Default(0).
			NonNegative(),
		field.Time("next_attempt_at").
			Comment("Claimed by moving this forward (a lease); due when in the past."),
		field.String("last_error").
			Default(""),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
	}
}

// Indexes of the LegalHoldSync.
func (LegalHoldSync) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("next_attempt_at"),
	}
}

// Annotations of the LegalHoldSync.
func (LegalHoldSync) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
