package purge

import (
	"context"
	"errors"
	"sync"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/tracing"
)

// insertPurges writes the planned purges (ScheduleFor) and returns them
// with their ids. Many go through Ent's CreateBulk; a single one, every
// single delete's, through a statement built once, as a delete's
// DELETE ... RETURNING and its audit event's INSERT are (Ent's builder
// cost a single delete's note about three times the statement's own work,
// issue 22).
func (p *Purger) insertPurges(ctx context.Context, tx *ent.Tx, planned []*ent.ObjectPurge) ([]*ent.ObjectPurge, error) {
	if len(planned) == 1 {
		return planned, p.insertOne(ctx, tx, planned[0])
	}
	return createBulk(ctx, tx, planned)
}

// createBulk writes planned purges through Ent.
func createBulk(ctx context.Context, tx *ent.Tx, planned []*ent.ObjectPurge) ([]*ent.ObjectPurge, error) {
	creates := make([]*ent.ObjectPurgeCreate, len(planned))
	for i, job := range planned {
		creates[i] = tx.ObjectPurge.Create().
			SetBucket(job.Bucket).SetObjectKey(job.ObjectKey).SetMultipartUploadID(job.MultipartUploadID).
			SetAbortAllMultipart(job.AbortAllMultipart).SetUploadID(job.UploadID).SetOwnerID(job.OwnerID).
			SetFilename(job.Filename).SetSize(job.Size).SetUploadStatus(job.UploadStatus).
			SetDeletionJobID(job.DeletionJobID).SetRequestedBy(job.RequestedBy).SetRequestedVia(job.RequestedVia).
			SetAttempts(job.Attempts).SetNextAttemptAt(job.NextAttemptAt).SetCreatedAt(job.CreatedAt)
	}
	return tx.ObjectPurge.CreateBulk(creates...).Save(ctx)
}

// insertOne writes one planned purge and sets its id. It stands in for
// Ent's create: the schema's checks (a bucket and a key) and the
// traceparent that tracing's hook (tracing.StampQueued, registered when
// the purger traces) would store.
func (p *Purger) insertOne(ctx context.Context, tx *ent.Tx, job *ent.ObjectPurge) error {
	if job.Bucket == "" || job.ObjectKey == "" {
		return errors.New("a purge needs a bucket and a key")
	}
	if p.opts.Tracer != nil {
		job.Traceparent = tracing.Traceparent(ctx)
	}
	return database.QueryRow(ctx, tx, insertOnePurge(), []any{
		job.Bucket, job.ObjectKey, job.MultipartUploadID, job.AbortAllMultipart, job.UploadID, job.OwnerID,
		job.Filename, job.Size, job.UploadStatus, job.DeletionJobID, job.RequestedBy, job.RequestedVia,
		job.Attempts, job.NextAttemptAt, job.LastError, job.CreatedAt, job.Traceparent, // purgeColumns' order
	}, &job.ID)
}

// purgeColumns are the columns insertOne writes, in the order of its
// values: every column but the id.
var purgeColumns = []string{
	objectpurge.FieldBucket, objectpurge.FieldObjectKey, objectpurge.FieldMultipartUploadID, objectpurge.FieldAbortAllMultipart,
	objectpurge.FieldUploadID, objectpurge.FieldOwnerID, objectpurge.FieldFilename, objectpurge.FieldSize,
	objectpurge.FieldUploadStatus, objectpurge.FieldDeletionJobID, objectpurge.FieldRequestedBy, objectpurge.FieldRequestedVia,
	objectpurge.FieldAttempts, objectpurge.FieldNextAttemptAt, objectpurge.FieldLastError, objectpurge.FieldCreatedAt,
	objectpurge.FieldTraceparent,
}

// insertOnePurge is insertOne's statement, from Ent's SQL builder, built
// once. PostgreSQL's placeholders ($1) and quoting are also SQLite's.
var insertOnePurge = sync.OnceValue(func() string {
	row := make([]any, len(purgeColumns))
	for i := range row {
		row[i] = "" // not nil, which the builder writes as NULL, not as a placeholder
	}
	query, _ := sql.Dialect(dialect.Postgres).Insert(objectpurge.Table).Columns(purgeColumns...).Values(row...).Returning(objectpurge.FieldID).Query()
	return query
})
