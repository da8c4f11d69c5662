package purge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/receipt"
)

// doneRows deletes the rows of finished purges in the background, many in
// one statement: while one DELETE commits, the rows finished meanwhile queue
// up for the next. The object is already gone when a row is queued, so
// nobody waits for the row: a delete's caller gets its answer after one
// commit (its record's), not two, and under load the database commits once
// per group of finished purges. A row whose DELETE never happens (a crash,
// a database error) only means its idempotent purge runs again, when due.
//
// A flush first lets the rows gather (finishGather), so that the rows of
// many deletes end in one transaction: each one costs its statements (the
// rows' DELETE, the trash's, the "purged" events' chain, the receipts' read
// and insert, the endpoints' read) whatever its size, and, when no delete's
// transaction is under way to share, a commit and its fsync (issue 22).
// Nobody waits for them.
type doneRows struct {
	finish func(ctx context.Context, jobs []*ent.ObjectPurge) error
	logger *slog.Logger
	gather func() // returns once the rows have gathered
	mu     sync.Mutex
	idle   *sync.Cond // signalled when the queue is empty and no flush runs
	busy   bool
	jobs   []*ent.ObjectPurge
}

func newDoneRows(finish func(ctx context.Context, jobs []*ent.ObjectPurge) error, logger *slog.Logger, gather time.Duration) *doneRows {
	d := &doneRows{finish: finish, logger: logger, gather: func() { time.Sleep(gather) }}
	d.idle = sync.NewCond(&d.mu)
	return d
}

// add queues the row of a finished purge for deletion.
func (d *doneRows) add(job *ent.ObjectPurge) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.jobs = append(d.jobs, job)
	if !d.busy {
		d.busy = true
		go d.flush()
	}
}

func (d *doneRows) flush() {
	d.gather() // busy meanwhile: wait waits for it too
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.jobs) > 0 {
		jobs := d.jobs[:min(len(d.jobs), batchSize)]
		d.jobs = d.jobs[len(jobs):]
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.finish(ctx, jobs); err != nil {
			d.logger.WarnContext(ctx, "finish purges; they will run again", "purges", len(jobs), "error", err)
		}
		cancel()
		d.mu.Lock()
	}
	d.busy = false
	d.idle.Broadcast()
}

// wait returns once every queued row is deleted (or failed to be).
func (d *doneRows) wait() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.busy {
		d.idle.Wait()
	}
}

// finish records, in one transaction, that the purges' objects are gone:
// their rows are deleted, and so are the uploads' entries in the trash,
// each with its "purged" event. The event tells what the purge carries
// from the delete, or, for a purge written before purges carried it, what
// the trash entry kept. Only the purges whose rows this transaction deleted
// are recorded: a purge whose lease ran out while its object was being
// removed may have been claimed, removed and recorded by another instance
// too, and its upload must be recorded purged once, not once per instance
// (nor twice if one instance queued the row twice).
// The transaction is shared with others' where the purger's Commits group
// them (the deletes' on SQLite). If it fails, the (idempotent) purges run
// again.
func (p *Purger) finish(ctx context.Context, jobs []*ent.ObjectPurge) error {
	ids := make([]int, len(jobs))
	for i, job := range jobs {
		ids[i] = job.ID
	}
	return p.opts.Commits.Do(ctx, func(ctx context.Context, tx *ent.Tx) error {
		gone, live, err := deletePurges(ctx, tx, ids)
		if err != nil {
			return err
		}
		var mine []*ent.ObjectPurge
		var uploadIDs []any
		var subjects []audit.Subject
		carried := make(map[string]bool, len(jobs))
		for _, job := range jobs {
			if !gone[job.ID] {
				continue
			}
			// Once: a row can be here twice, queued by an inline attempt
			// that outlived its lease and by the loop that claimed it.
			delete(gone, job.ID)
			mine = append(mine, job)
			uploadIDs = append(uploadIDs, job.UploadID)
			if job.OwnerID != "" {
				subjects = append(subjects, audit.Subject{ID: job.UploadID, OwnerID: job.OwnerID, Filename: job.Filename, Size: job.Size, Status: job.UploadStatus})
				carried[job.UploadID] = true
			}
		}
		if len(mine) == 0 {
			return nil
		}
		trashed, err := emptyTrash(ctx, tx, sql.In(deletedupload.FieldID, uploadIDs...))
		if err != nil {
			return err
		}
		// The DELETE said whether the owners it names have a live
		// endpoint; an event told from a trash entry is an owner it did
		// not name, so the outbox reads its endpoints.
		endpoints := change.NoneLive
		if live {
			endpoints = change.MayHave
		}
		for _, e := range trashed {
			if !carried[e.ID] {
				subjects = append(subjects, e.Subject)
				endpoints = change.MayHave
			}
		}
		return change.RecordWithReceipts(ctx, tx, audit.Purger, audit.Purged, endpoints, p.receipts(mine, subjects), subjects...)
	})
}

// deletePurges deletes the purge rows of ids and returns which of them it
// deleted (rows another transaction had deleted are not among them), and
// whether the owner a deleted row names has a live webhook endpoint. That
// is read by the same statement, in the transaction (as a delete reads it:
// graph's deleteReturning), so that the "purged" events of owners without
// one cost no read of the endpoints.
func deletePurges(ctx context.Context, tx *ent.Tx, ids []int) (gone map[int]bool, live bool, err error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Ent has no DELETE ... RETURNING; PostgreSQL's placeholders and quoting
	// are also SQLite's.
	query, qargs := sql.Dialect(dialect.Postgres).Delete(objectpurge.Table).Where(sql.In(objectpurge.FieldID, args...)).Query()
	rows, err := tx.QueryContext(ctx, query+" RETURNING "+objectpurge.FieldID+", "+hasEndpoints, qargs...)
	if err != nil {
		return nil, false, fmt.Errorf("delete finished purges: %w", err)
	}
	defer rows.Close()
	gone = make(map[int]bool, len(ids))
	for rows.Next() {
		var id int
		var ownerLive bool
		if err := rows.Scan(&id, &ownerLive); err != nil {
			return nil, false, fmt.Errorf("delete finished purges: %w", err)
		}
		gone[id] = true
		live = live || ownerLive
	}
	return gone, live, rows.Err()
}

// hasEndpoints tells, of a purge row, whether its owner has a live webhook
// endpoint (webhook.Enqueue's reading of one). A purge without an owner has
// none.
var hasEndpoints = fmt.Sprintf("EXISTS (SELECT 1 FROM %s WHERE %s.%s = %s.%s AND %s.%s IS NULL)",
	webhookendpoint.Table, webhookendpoint.Table, webhookendpoint.FieldOwnerID, objectpurge.Table, objectpurge.FieldOwnerID,
	webhookendpoint.Table, webhookendpoint.FieldDisabledAt)

// receipts returns what issues, in finish's transaction, the deletion
// receipts of the uploads whose purged events it records (subjects): they
// are gone for good now, record and object. Nil without an issuer.
func (p *Purger) receipts(jobs []*ent.ObjectPurge, subjects []audit.Subject) change.Receipts {
	if p.opts.Receipts == nil {
		return nil
	}
	return func(ctx context.Context, tx *ent.Tx, auditHashes []string) (map[string]string, error) {
		byUpload := make(map[string]*ent.ObjectPurge, len(jobs))
		for _, job := range jobs {
			byUpload[job.UploadID] = job
		}
		removals := make([]receipt.Removal, len(subjects))
		for i, s := range subjects {
			job := byUpload[s.ID]
			removals[i] = receipt.Removal{
				UploadID: s.ID, OwnerID: s.OwnerID, Bucket: job.Bucket, ObjectKey: job.ObjectKey, Queued: job.CreatedAt, JobID: job.DeletionJobID,
				RequestedBy: job.RequestedBy, RequestedVia: job.RequestedVia,
			}
		}
		return p.opts.Receipts.Issue(ctx, tx, removals, auditHashes)
	}
}

// trashEntry is what a trash entry kept, for its "purged" event and its
// receipt.
type trashEntry struct {
	audit.Subject
	DeletedAt     time.Time
	DeletionJobID string
}

// emptyTrash deletes the trash entries that where matches (of uploads
// purged: only those deleted with a restore window have one) and returns
// what they kept.
func emptyTrash(ctx context.Context, tx *ent.Tx, where *sql.Predicate) ([]trashEntry, error) {
	// Ent has no DELETE ... RETURNING; PostgreSQL's placeholders and quoting
	// are also SQLite's.
	query, args := sql.Dialect(dialect.Postgres).Delete(deletedupload.Table).Where(where).Query()
	rows, err := tx.QueryContext(ctx, query+" RETURNING "+strings.Join([]string{
		deletedupload.FieldID, deletedupload.FieldOwnerID, deletedupload.FieldFilename, deletedupload.FieldSize, deletedupload.FieldStatus,
		deletedupload.FieldDeletedAt, deletedupload.FieldDeletionJobID,
	}, ", "), args...)
	if err != nil {
		return nil, fmt.Errorf("empty the trash: %w", err)
	}
	defer rows.Close()
	var trashed []trashEntry
	for rows.Next() {
		var e trashEntry
		if err := rows.Scan(&e.ID, &e.OwnerID, &e.Filename, &e.Size, &e.Status, &e.DeletedAt, &e.DeletionJobID); err != nil {
			return nil, fmt.Errorf("empty the trash: %w", err)
		}
		trashed = append(trashed, e)
	}
	return trashed, rows.Err()
}
