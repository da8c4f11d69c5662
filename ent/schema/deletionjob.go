package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/safedelete/uploads/internal/ids"
)

// DeletionJob is a delete of any number of one owner's uploads that runs
// in the background, a batch at a time, on whichever instance claims it
// (a lease, as purges and deliveries are claimed: next_attempt_at and
// attempts). Each batch's delete and the job's progress commit in one
// transaction, fenced by the claim (attempts) and the status, so a job
// picked up again after its instance died counts nothing twice, and a
// canceled job deletes nothing more.
type DeletionJob struct {
	ent.Schema
}

// Fields of the DeletionJob.
func (DeletionJob) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewJob).
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty().
			Annotations(entgql.Skip()),
		field.Enum("kind").
			Values("FILTER", "USER_ERASE").
			Immutable().
			Annotations(entgql.Skip()).
			Comment("FILTER deletes the owner's uploads matching filter created until cutoff; USER_ERASE deletes all of them, then the user."),
		field.Text("filter").
			Immutable().
			Default("").
			Annotations(entgql.Skip()).
			Comment("The UploadWhereInput of a FILTER job, as JSON."),
		field.Time("cutoff").
			Optional().
			Nillable().
			Immutable().
			Annotations(entgql.Skip()).
			Comment("Uploads created after it are not the job's: those the filter matched when it started."),
		field.Bool("dry_run").
			Immutable().
			Default(false).
			Comment("A dry run counts what matched and deletes nothing."),
		field.String("actor").
			Immutable().
			Default("").
			Annotations(entgql.Skip()).
			Comment("Who started it (an API key's id, cli), named in the audit events of what it deletes."),
		field.String("via").
			Immutable().
			Default("").
			Annotations(entgql.Skip()),
		field.String("request_id").
			Immutable().
			Default("").
			Annotations(entgql.Skip()).
			Comment("The X-Request-Id of the request that started it, carried to the audit events."),
		field.Enum("status").
			Values("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED").
			Default("QUEUED").
			Annotations(entgql.Type("DeletionJobStatus")),
		field.Int("matched_count").
			Default(0).
			NonNegative().
			Comment("How many uploads matched when the job started."),
		field.Int("deleted_count").
			Default(0).
			NonNegative().
			Comment("How many uploads the job deleted; committed with each batch."),
		field.Int("held_count").
			Default(0).
			NonNegative().
			Comment("How many of the matched uploads a hold kept (internal/holds); set when the job ends."),
		field.Int("failed_count").
			Default(0).
			NonNegative().
			Comment("How many of the matched uploads were left when the job FAILED; 0 otherwise."),
		field.Int("pending_receipts").
			Default(0).
			Annotations(entgql.Skip()).
			Comment("How many uploads the job deleted still have no deletion receipt (their objects not purged yet, or waiting in the trash), less those restored. The job's receipt is issued once it has ended and this is 0."),
		field.Text("receipt").
			Default("").
			Annotations(entgql.Skip()).
			Comment("The job's deletion receipt, a compact JWS (internal/receipt.JobClaims); empty until issued."),
		field.String("error").
			Default("").
			Comment("Why the job FAILED; empty otherwise."),
		field.Time("created_at").
			Immutable().
			Default(time.Now).
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("started_at").
			Optional().
			Nillable(),
		field.Time("finished_at").
			Optional().
			Nillable(),
		field.Int("attempts").
			Default(0).
			NonNegative().
			Annotations(entgql.Skip()).
			Comment("Claims so far; the current claim's number fences its writes."),
		field.Time("next_attempt_at").
			Default(time.Now).
			Annotations(entgql.Skip()).
			Comment("While QUEUED or RUNNING: when it is due; while claimed, when the lease ends."),
		traceparentField(),
	}
}

// Indexes of the DeletionJob.
func (DeletionJob) Indexes() []ent.Index {
	return []ent.Index{
		// viewer.deletionJobs, newest first.
		index.Fields("owner_id", "created_at"),
		// The claim: unfinished jobs that are due.
		index.Fields("status", "next_attempt_at"),
		// The janitor's prune of finished jobs.
		index.Fields("finished_at"),
	}
}

// Annotations of the DeletionJob.
func (DeletionJob) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}
