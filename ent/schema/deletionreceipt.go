package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DeletionReceipt is the signed proof that an upload is gone for good: its
// record deleted and every version of its object removed. It is written in
// the transaction that records the upload's PURGED event (or, for an
// upload that never stored an object, its DELETED event), and kept as long
// as the audit trail (AUDIT_RETENTION).
type DeletionReceipt struct {
	ent.Schema
}

// Fields of the DeletionReceipt.
func (DeletionReceipt) Fields() []ent.Field {
	return []ent.Field{
		field.String("upload_id").
			Immutable().
			NotEmpty().
			Unique(),
		field.String("owner_id").
			Immutable().
			NotEmpty(),
		field.Text("jws").
			Immutable().
			NotEmpty().
			Comment("The receipt: a compact JWS, EdDSA, whose payload names what was removed, when and at whose request."),
		field.String("deletion_job_id").
			Immutable().
			Default("").
			Comment("The deletion job that deleted the upload, if one did: the job's receipt digests the receipts that name it, in upload id order."),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
	}
}

// Indexes of the DeletionReceipt.
func (DeletionReceipt) Indexes() []ent.Index {
	return []ent.Index{
		// The oldest, to prune with the audit trail.
		index.Fields("created_at"),
		// A job's receipts, streamed in upload id order for its digest,
		// and paged.
		index.Fields("deletion_job_id", "upload_id"),
	}
}

// Annotations of the DeletionReceipt.
func (DeletionReceipt) Annotations() []schema.Annotation {
	// The GraphQL type is written by hand (graph/schema.graphqls): it shows
	// the receipt's decoded claims, not its row.
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
