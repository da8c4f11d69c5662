package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DeletedUpload is an upload whose record was deleted and whose object is
// not purged yet: the trash. It is written in the delete's transaction and
// removed in the transaction that records the object's purge (or by a
// restore, which writes the upload back). While purge_at is in the future
// and its purge is unclaimed, its owner can restore it.
type DeletedUpload struct {
	ent.Schema
}

// Fields of the DeletedUpload.
func (DeletedUpload) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			Immutable().
			NotEmpty().
			Comment("The upload's id, kept: a restored upload is the same upload."),
		field.String("owner_id").
			Immutable().
			NotEmpty().
			Annotations(entgql.Skip()),
		field.String("filename").
			Immutable(),
		field.String("content_type").
			Immutable(),
		field.Int64("size").
			Immutable().
			NonNegative(),
		field.Enum("status").
			Values("PENDING", "COMPLETED", "FAILED").
			Immutable().
			Annotations(entgql.Type("UploadStatus")),
		field.String("bucket").
			Immutable().
			Default("").
			Annotations(entgql.Skip()),
		field.String("object_key").
			Immutable().
			Default("").
			Annotations(entgql.Skip()),
		field.String("multipart_upload_id").
			Immutable().
			Default("").
			Annotations(entgql.Skip()),
		field.Time("created_at").
			Immutable().
			Comment("When the upload was created."),
		field.Time("deleted_at").
			Immutable().
			Default(time.Now).
			Annotations(entgql.OrderField("DELETED_AT")),
		field.Time("purge_at").
			Comment("When the restore window closes and the object is purged; purgeUpload closes it early."),
		field.Time("held_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("While later than now, a hold keeps it in the trash, restorable, past purge_at; its purge waits as long (internal/holds)."),
		field.String("deletion_job_id").
			Immutable().
			Default("").
			Annotations(entgql.Skip()).
			Comment("The deletion job that deleted it, if one did: its receipt waits for this upload's, or for its restore (internal/receipt)."),
	}
}

// Indexes of the DeletedUpload.
func (DeletedUpload) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("owner_id", "deleted_at"),
		index.Fields("purge_at"),
	}
}

// Annotations of the DeletedUpload.
func (DeletedUpload) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}
