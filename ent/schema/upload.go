package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/safedelete/uploads/internal/ids"
)

// Upload is a file a user uploaded: this record plus, usually, one object in
// the bucket. The record is written before the object and deleted before the
// object is purged, so that no object ever exists that no record or pending
// purge knows about.
type Upload struct {
	ent.Schema
}

// Mixin adds created_at and updated_at.
func (Upload) Mixin() []ent.Mixin {
	return []ent.Mixin{timestamps{}}
}

// Fields of the Upload.
func (Upload) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewUpload).
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty().
			Annotations(entgql.Skip()),
		field.String("filename").
			Annotations(entgql.OrderField("FILENAME")),
		field.String("content_type"),
		field.Int64("size").
			NonNegative().
			Annotations(entgql.OrderField("SIZE")),
		field.Enum("status").
			Values("PENDING", "COMPLETED", "FAILED").
			Default("PENDING").
			// Named here because gqlgen.yml binds it to upload.Status (see
			// ent/entc.go); entgql would otherwise prefix the bound name again.
			Annotations(entgql.Type("UploadStatus")),
		field.String("bucket").
			Default("").
			Annotations(entgql.Skip()).
			Comment("Empty when the upload never stored an object."),
		field.String("object_key").
			Default("").
			Annotations(entgql.Skip()).
			Comment("Empty when the upload never stored an object."),
		field.String("multipart_upload_id").
			Default("").
			Annotations(entgql.Skip()).
			Comment("The S3 multipart upload in progress, or left incomplete by a failure; empty otherwise."),
		field.Time("held_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("While later than now, a hold (of the upload or of its owner) keeps it: every delete's WHERE reads it, so placing a hold and a delete conflict on this row (internal/holds)."),
	}
}

// Edges of the Upload.
func (Upload) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("owner", User.Type).
			Ref("uploads").
			Field("owner_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Indexes of the Upload.
func (Upload) Indexes() []ent.Index {
	return []ent.Index{
		// An owner's uploads, and "which of these ids are the owner's" (every
		// delete asks it) answered from the index alone.
		index.Fields("owner_id", "id"),
		// An object belongs to one record: its key holds the upload's id, and
		// the database refuses a second record of it, so deleting a record's
		// object never needs to ask whether another still uses it.
		index.Fields("bucket", "object_key").
			Unique().
			Annotations(entsql.IndexWhere("object_key <> ''")),
	}
}

// Annotations of the Upload.
func (Upload) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}
