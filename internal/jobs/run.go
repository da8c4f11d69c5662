package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/queue"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/requestlog"
)

// QueueKind names deletion jobs in the queue's wake-ups.
const QueueKind = "deletion-job"

// maxAttempts is how many claims of a job may end in a failure (a
// database or S3 error, not a lost lease) before the job is FAILED.
const maxAttempts = 10

// errClaimLost is a fenced write that found the job no longer this
// claim's: taken over after the lease ended, or canceled.
var errClaimLost = errors.New("deletion job: claim lost (canceled, or taken over after the lease ended)")

// Run runs due jobs until ctx ends, Concurrency at a time: whenever a job
// ends it claims another at once, and otherwise looks every PollInterval
// and whenever wake receives (a job was started: queue.Queue.WakeOnDue).
// It returns once the jobs it runs have stopped; a job stopped by ctx is
// handed back (due at once) for another instance, or the next start, to
// resume.
func (j *Jobs) Run(ctx context.Context, wake <-chan struct{}) {
	queue.Work(ctx, j.opts.Concurrency, j.opts.PollInterval, wake,
		func(ctx context.Context, n int) ([]claimed, error) { return j.claim(ctx, n, "") },
		func(err error) { j.logger.ErrorContext(ctx, "deletion job claim failed", "error", err) },
		j.run)
}

// RunOnce claims up to Concurrency due jobs and runs them here, side by
// side, until each ends or its claim is lost. It returns how many it ran.
func (j *Jobs) RunOnce(ctx context.Context) (int, error) {
	claimed, err := j.claim(ctx, j.opts.Concurrency, "")
	var wg sync.WaitGroup
	for _, c := range claimed {
		wg.Go(func() { j.run(ctx, c) })
	}
	wg.Wait()
	return len(claimed), err
}

// RunJob claims the job jobID if it is due (QUEUED, or RUNNING with its
// lease ended) and runs it here until it ends or its claim is lost; it
// reports whether it claimed it. A command that must see a job through
// whether or not a server runs (`users delete`) calls it while it
// watches: it takes the job whenever nobody else holds it.
func (j *Jobs) RunJob(ctx context.Context, jobID string) (bool, error) {
	claimed, err := j.claim(ctx, 1, jobID)
	if err != nil || len(claimed) == 0 {
		return false, err
	}
	j.run(ctx, claimed[0])
	return true, nil
}

// claimed is a job taken for one lease: the claim's number (attempts
// after it) fences every write of the holder.
type claimed struct {
	ID          string `sql:"id"`
	Claim       int    `sql:"attempts"`
	Traceparent string `sql:"traceparent"`
}

// claim takes up to n due jobs (only jobID, if given), each for one
// lease, one claim at a time: a job is not due while another job of its
// owner is claimed (see onePerOwner), and each claim sees the one before.
func (j *Jobs) claim(ctx context.Context, n int, jobID string) ([]claimed, error) {
	var all []claimed
	for len(all) < n {
		where := []func(*sql.Selector){
			deletionjob.StatusIn(deletionjob.StatusQUEUED, deletionjob.StatusRUNNING),
		}
		if jobID != "" {
			where = append(where, deletionjob.ID(jobID))
		}
		now := time.Now()
		where = append(where, onePerOwner(now))
		one, err := queue.Claim[claimed](ctx, j.client, queue.Batch{
			Table: deletionjob.Table, Where: where, Limit: 1, Now: now, LeaseEnd: now.Add(j.opts.Lease),
			Returning: []string{deletionjob.FieldID, deletionjob.FieldAttempts, deletionjob.FieldTraceparent},
		})
		if err != nil || len(one) == 0 {
			return all, err
		}
		all = append(all, one...)
	}
	return all, nil
}

// onePerOwner keeps a job back while another job of its owner is claimed
// (QUEUED or RUNNING, its lease not over: running, or backing off after a
// failure): one owner's jobs run one after another, on every instance
// together, and leave the other slots to other owners' jobs. Two
// instances claiming at the same moment may each take one; that only
// costs the fairness a moment.
func onePerOwner(now time.Time) func(*sql.Selector) {
	return func(s *sql.Selector) {
		other := sql.Table(deletionjob.Table).As("other_job")
		s.Where(sql.NotExists(
			sql.Dialect(s.Dialect()).Select(other.C(deletionjob.FieldID)).From(other).Where(sql.And(
				sql.ColumnsEQ(other.C(deletionjob.FieldOwnerID), s.C(deletionjob.FieldOwnerID)),
				sql.In(other.C(deletionjob.FieldStatus), deletionjob.StatusQUEUED.String(), deletionjob.StatusRUNNING.String()),
				sql.GT(other.C(deletionjob.FieldNextAttemptAt), now),
				sql.ColumnsNEQ(other.C(deletionjob.FieldID), s.C(deletionjob.FieldID)),
			)),
		))
	}
}

// worker is one claim of a job, running it.
type worker struct {
	j     *Jobs
	job   *ent.DeletionJob
	claim int
}

// fenced are the conditions of a write of w's: the job is still its
// claim's, and RUNNING (not canceled).
func (w *worker) fenced() []predicate.DeletionJob {
	return []predicate.DeletionJob{
		deletionjob.ID(w.job.ID), deletionjob.Attempts(w.claim), deletionjob.StatusEQ(deletionjob.StatusRUNNING),
	}
}

// run runs a claimed job until it ends, fails, or its claim is lost.
func (j *Jobs) run(ctx context.Context, c claimed) {
	// In the trace of the request that started the job: each batch is a
	// span of its own (graph's DeleteOwnedBatchesTx), whichever instance
	// runs it.
	ctx, span := j.opts.Tracer.Resume(ctx, c.Traceparent, "deletion job")
	defer span.End()
	w := &worker{j: j, job: &ent.DeletionJob{ID: c.ID}, claim: c.Claim}
	err := w.begin(ctx)
	if err == nil {
		// What its batches delete names the job (its purges, trash
		// entries and receipts), for the job's receipt.
		ctx = receipt.WithJob(requestlog.NewContext(ctx, w.job.RequestID), w.job.ID)
		switch w.job.Kind {
		case deletionjob.KindUSER_ERASE:
			err = w.erase(ctx)
		default:
			err = w.filter(ctx)
		}
	}
	w.end(ctx, err)
}

// begin makes the claimed job RUNNING (started now, unless it started
// before) and reads it.
func (w *worker) begin(ctx context.Context) error {
	now := time.Now()
	return database.WithTx(ctx, w.j.client, func(tx *ent.Tx) error {
		n, err := tx.DeletionJob.Update().
			Where(deletionjob.ID(w.job.ID), deletionjob.Attempts(w.claim),
				deletionjob.StatusIn(deletionjob.StatusQUEUED, deletionjob.StatusRUNNING)).
			SetStatus(deletionjob.StatusRUNNING).
			Save(ctx)
		if err != nil || n == 0 {
			return cmp.Or(err, errClaimLost)
		}
		if _, err := tx.DeletionJob.Update().
			Where(deletionjob.ID(w.job.ID), deletionjob.StartedAtIsNil()).
			SetStartedAt(now).
			Save(ctx); err != nil {
			return err
		}
		w.job, err = tx.DeletionJob.Get(ctx, w.job.ID)
		return err
	})
}

func (w *worker) actor() audit.Actor {
	return audit.Actor{Name: w.job.Actor, Via: auditevent.Via(w.job.Via)}
}

// filter deletes the uploads of a FILTER job: the owner's uploads that
// match its filter and were created by its cutoff, in id order, a batch at
// a time; then it marks the job SUCCEEDED.
func (w *worker) filter(ctx context.Context) error {
	var where ent.UploadWhereInput
	if err := json.Unmarshal([]byte(w.job.Filter), &where); err != nil {
		return fmt.Errorf("read the job's filter: %w", err)
	}
	var cutoff time.Time
	if w.job.Cutoff != nil {
		cutoff = *w.job.Cutoff
	}
	matching, err := filtered(w.j.client.Upload.Query(), w.job.OwnerID, &where, cutoff)
	if err != nil {
		return err
	}
	if err := w.sweep(ctx, matching.Clone().Where(holds.NotHeld(time.Now()))); err != nil {
		return err
	}
	return database.WithTx(ctx, w.j.client, func(tx *ent.Tx) error {
		if err := w.countHeld(ctx, tx, matching); err != nil {
			return err
		}
		return w.succeed(ctx, tx)
	})
}

// sweep deletes the uploads of matching a batch at a time, through the
// delete core, each batch committing with the job's progress, until none
// is left past the last batch.
func (w *worker) sweep(ctx context.Context, matching *ent.UploadQuery) error {
	after, exhausted := "", false
	next := func(ctx context.Context, atMost int) ([]string, error) {
		if w.j.beforeBatch != nil {
			if err := w.j.beforeBatch(ctx, w.job.ID, w.claim); err != nil {
				return nil, err
			}
		}
		// Keyset: a batch that others deleted first is not read again.
		q := matching.Clone().Order(upload.ByID()).Limit(atMost)
		if after != "" {
			q.Where(upload.IDGT(after))
		}
		batch, err := q.IDs(ctx)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			exhausted = true
			return nil, nil
		}
		after = batch[len(batch)-1]
		return batch, nil
	}
	for !exhausted {
		// It returns early when a batch deleted nothing (others deleted
		// it first): the next call goes on past it.
		if _, err := w.j.deleter.DeleteOwnedBatchesTx(ctx, w.actor(), w.job.OwnerID, 0, next, w.progress); err != nil {
			return err
		}
	}
	return nil
}

// countHeld records, in tx, how many of matching a hold kept: the
// uploads the job leaves.
func (w *worker) countHeld(ctx context.Context, tx *ent.Tx, matching *ent.UploadQuery) error {
	held, err := matching.Clone().Where(holds.Held(time.Now())).Count(ctx)
	if err != nil {
		return fmt.Errorf("count held uploads: %w", err)
	}
	n, err := tx.DeletionJob.Update().Where(w.fenced()...).SetHeldCount(held).Save(ctx)
	if err != nil || n == 0 {
		return cmp.Or(err, errClaimLost)
	}
	return nil
}

// progress counts a batch's deletes in the job, in the batch's
// transaction, and renews the lease; if the job is no longer this claim's
// (taken over, canceled) the batch rolls back.
func (w *worker) progress(ctx context.Context, tx *ent.Tx, deleted []string) error {
	n, err := tx.DeletionJob.Update().
		Where(w.fenced()...).
		AddDeletedCount(len(deleted)).
		AddPendingReceipts(len(deleted)).
		SetNextAttemptAt(time.Now().Add(w.j.opts.Lease)).
		Save(ctx)
	if err != nil || n == 0 {
		return cmp.Or(err, errClaimLost)
	}
	tx.OnCommit(w.j.notifyAtCommit)
	return nil
}

// succeed marks the job SUCCEEDED, in tx, if it is still this claim's.
func (w *worker) succeed(ctx context.Context, tx *ent.Tx) error {
	n, err := tx.DeletionJob.Update().
		Where(w.fenced()...).
		SetStatus(deletionjob.StatusSUCCEEDED).
		SetFinishedAt(time.Now()).
		Save(ctx)
	if err != nil || n == 0 {
		return cmp.Or(err, errClaimLost)
	}
	tx.OnCommit(w.j.notifyAtCommit)
	return w.j.settle(ctx, tx, w.job.ID)
}

// end settles a run that stopped: a lost claim is the new holder's (or
// the canceler's) to settle; a run stopped by ctx (a shutdown) hands the
// job back, due now; a failure is retried after a backoff, and after
// maxAttempts claims the job is FAILED, with what is left of its uploads
// in failedCount.
func (w *worker) end(ctx context.Context, err error) {
	logger := w.j.logger
	switch {
	case err == nil:
		w.j.opts.Metrics.DeletionJob("succeeded")
		logger.InfoContext(ctx, "deletion job succeeded", "job_id", w.job.ID)
		return
	case errors.Is(err, errClaimLost):
		logger.InfoContext(ctx, "deletion job stopped: canceled or taken over", "job_id", w.job.ID)
		// Canceled where no receipt is issued (`uploads jobs cancel`),
		// it gets its receipt here if nothing is left to wait for.
		settle := context.WithoutCancel(ctx)
		if err := database.WithTx(settle, w.j.client, func(tx *ent.Tx) error { return w.j.settle(settle, tx, w.job.ID) }); err != nil {
			logger.WarnContext(ctx, "deletion job receipt", "job_id", w.job.ID, "error", err)
		}
		return
	}
	settle := context.WithoutCancel(ctx)
	var change func(update *ent.DeletionJobUpdate)
	failed := false
	switch {
	case ctx.Err() != nil:
		// A shutdown is no failure: the claim is given back uncounted, so
		// a long job across many deploys still has its maxAttempts tries.
		// The next claim reuses this one's number; this worker writes
		// nothing after this fenced update.
		change = func(update *ent.DeletionJobUpdate) { update.SetNextAttemptAt(time.Now()).AddAttempts(-1) }
	case w.claim >= maxAttempts:
		failed = true
		logger.ErrorContext(ctx, "deletion job failed", "job_id", w.job.ID, "error", err)
		left := w.left(settle)
		change = func(update *ent.DeletionJobUpdate) {
			update.SetStatus(deletionjob.StatusFAILED).SetFinishedAt(time.Now()).SetError(publicError(err)).SetFailedCount(left)
		}
	default:
		wait := backoff.Delay(w.claim, time.Second, time.Minute)
		logger.WarnContext(ctx, "deletion job interrupted; it resumes later", "job_id", w.job.ID, "error", err, "retry_in", wait)
		change = func(update *ent.DeletionJobUpdate) { update.SetNextAttemptAt(time.Now().Add(wait)) }
	}
	var n int
	saveErr := database.WithTx(settle, w.j.client, func(tx *ent.Tx) (err error) {
		update := tx.DeletionJob.Update().Where(w.fenced()...)
		change(update)
		if n, err = update.Save(settle); err != nil || n == 0 || !failed {
			return err
		}
		// Failed, it ends with what it deleted: its receipt says so.
		return w.j.settle(settle, tx, w.job.ID)
	})
	if saveErr != nil {
		logger.ErrorContext(ctx, "settle deletion job; it resumes when its lease ends", "job_id", w.job.ID, "error", saveErr)
		return
	}
	if n > 0 && failed {
		w.j.opts.Metrics.DeletionJob("failed")
		w.j.notify()
	}
}

// publicError words a failure for the job's owner: the uploads stay, and
// the detail, which may name the database's internals, is in the log.
func publicError(err error) string {
	if errors.Is(err, errUploadsStuck) {
		return err.Error()
	}
	return "the deletion failed repeatedly (the service's log has the detail); the uploads left are counted in failedCount"
}

// left counts the job's uploads still there (for failedCount).
func (w *worker) left(ctx context.Context) int {
	q := w.j.client.Upload.Query().Where(upload.OwnerID(w.job.OwnerID))
	if w.job.Kind == deletionjob.KindFILTER {
		var where ent.UploadWhereInput
		var cutoff time.Time
		if w.job.Cutoff != nil {
			cutoff = *w.job.Cutoff
		}
		if json.Unmarshal([]byte(w.job.Filter), &where) != nil {
			return 0
		}
		var err error
		if q, err = filtered(w.j.client.Upload.Query(), w.job.OwnerID, &where, cutoff); err != nil {
			return 0
		}
	}
	n, err := q.Count(ctx)
	if err != nil {
		return 0
	}
	return n
}
