package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ObjectPurge is the durable note that an object must be removed from the
// bucket. It is written in the same transaction that deletes the upload
// record, and removed only once the object is gone, so a crash or an S3
// outage at any moment leaves the object known.
type ObjectPurge struct {
	ent.Schema
}

// Fields of the ObjectPurge.
func (ObjectPurge) Fields() []ent.Field {
	return []ent.Field{
		field.String("bucket").
			Immutable().
			NotEmpty(),
		field.String("object_key").
			Immutable().
			NotEmpty(),
		field.String("multipart_upload_id").
			Immutable().
			Default("").
			Comment("An incomplete multipart upload of the key to abort, so its parts stop costing storage."),
		field.Bool("abort_all_multipart").
			Immutable().
			Default(false).
			Comment("Abort every incomplete multipart upload of the key, recorded or not: for an upload deleted while still being stored, whose multipart upload may have started without its id being recorded."),
		field.String("upload_id").
			Immutable().
			Comment("The deleted upload, for operators reading the queue."),
		field.String("owner_id").
			Immutable().
			Default("").
			Comment("The deleted upload's owner, filename, size and status, carried from the delete for the \"purged\" event it records once the object is gone. Empty for a purge that records none (reconcile's, a stuck upload's)."),
		field.String("filename").
			Immutable().
			Default(""),
		field.Int64("size").
			Immutable().
			Default(0),
		field.String("upload_status").
			Immutable().
			Default(""),
		field.String("deletion_job_id").
			Immutable().
			Default("").
			Comment("The deletion job that deleted the upload, if one did: the upload's receipt, issued when the purge ends, counts toward the job's (internal/receipt)."),
		field.String("requested_by").
			Immutable().
			Default("").
			Comment("Who asked for the delete and through what (its DELETED audit event's actor and via), carried from the delete for the upload's deletion receipt, whose delete_requested_at is then the purge's created_at (the event's own time). Empty for a purge written before purges carried it, or by no caller's delete: the receipt then reads the event."),
		field.String("requested_via").
			Immutable().
			Default(""),
		field.Int("attempts").
			Default(0).
			NonNegative(),
		field.Time("next_attempt_at").
			Comment("The purge is claimed by moving this forward (a lease); it is due when in the past."),
		field.String("last_error").
			Default(""),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
		traceparentField(),
	}
}

// Indexes of the ObjectPurge.
func (ObjectPurge) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("next_attempt_at"),
		// Unschedule and Expedite find an upload's purge by upload_id,
		// once per trashed upload when the trash is emptied.
		index.Fields("upload_id"),
	}
}

// Annotations of the ObjectPurge.
func (ObjectPurge) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
