package purge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
)

// doneRows deletes the rows of finished purges in the background, many in
// one statement: while one DELETE commits, the rows finished meanwhile queue
// up for the next. The object is already gone when a row is queued, so
// nobody waits for the row: a delete's caller gets its answer after one
// commit (its record's), not two, and under load the database commits once
// per group of finished purges. A row whose DELETE never happens (a crash,
// a database error) only means its idempotent purge runs again, when due.
type doneRows struct {
	client *ent.Client
	logger *slog.Logger
	mu     sync.Mutex
	idle   *sync.Cond // signalled when the queue is empty and no flush runs
	busy   bool
	jobs   []*ent.ObjectPurge
}

func newDoneRows(client *ent.Client, logger *slog.Logger) *doneRows {
	d := &doneRows{client: client, logger: logger}
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
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.jobs) > 0 {
		jobs := d.jobs[:min(len(d.jobs), batchSize)]
		d.jobs = d.jobs[len(jobs):]
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := finish(ctx, d.client, jobs); err != nil {
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
// their rows are deleted, and so are the uploads' places in the trash, each
// with its "purged" event. If it fails, the (idempotent) purges run again.
func finish(ctx context.Context, client *ent.Client, jobs []*ent.ObjectPurge) error {
	ids := make([]int, len(jobs))
	uploadIDs := make([]string, len(jobs))
	for i, job := range jobs {
		ids[i], uploadIDs[i] = job.ID, job.UploadID
	}
	ctx = audit.WithActor(ctx, audit.Purger)
	return database.WithTx(ctx, client, func(tx *ent.Tx) error {
		if _, err := tx.ObjectPurge.Delete().Where(objectpurge.IDIn(ids...)).Exec(ctx); err != nil {
			return err
		}
		trashed, err := tx.DeletedUpload.Query().Where(deletedupload.IDIn(uploadIDs...)).All(ctx)
		if err != nil || len(trashed) == 0 {
			return err
		}
		subjects := make([]audit.Subject, len(trashed))
		for i, d := range trashed {
			subjects[i] = audit.OfDeleted(d)
		}
		if _, err := tx.DeletedUpload.Delete().Where(deletedupload.IDIn(uploadIDs...)).Exec(ctx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Purged, subjects...)
	})
}
