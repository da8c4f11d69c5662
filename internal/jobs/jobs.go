// Package jobs runs deletions of any size in the background: deletion
// jobs. A job is a row (ent.DeletionJob) that any instance may claim with
// a lease (package queue, as purges and webhook deliveries are claimed);
// the instance that holds it deletes the owner's uploads a batch at a time
// through graph's one delete core (trash, audit, webhooks, purges), and
// each batch's delete commits with the job's progress in one transaction,
// fenced by the lease: a batch of an instance that lost its lease, or of a
// job canceled meanwhile, rolls back. So a job whose instance died is
// resumed by another once the lease ends, and nothing is deleted or
// counted twice.
//
// Two kinds: FILTER deletes the owner's uploads that match a filter (the
// one of viewer.uploads) and were created before the job started; USER_ERASE
// deletes all of a user's uploads, then the user (what `users delete`
// does).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/tracing"
)

// Deleter is graph's delete core, the one every delete goes through.
type Deleter interface {
	// DeleteOwnedBatchesTx deletes the owner's uploads that next returns,
	// a batch at a time, running inBatch in each batch's transaction; see
	// graph.
	DeleteOwnedBatchesTx(ctx context.Context, actor audit.Actor, ownerID string, limit int,
		next func(ctx context.Context, atMost int) ([]string, error),
		inBatch func(ctx context.Context, tx *ent.Tx, deleted []string) error) (int, error)
	// PurgeTrash purges at once the objects of the owner's uploads in the
	// trash and returns how many.
	PurgeTrash(ctx context.Context, ownerID string) (int, error)
}

// Defaults of Options, for internal/config and tests.
const (
	DefaultPollInterval = time.Second
	DefaultLease        = time.Minute
	DefaultConcurrency  = 4
)

// Options are the jobs' settings; zero means the default.
type Options struct {
	// PollInterval is how often Run looks for due jobs besides its
	// wake-ups, and how often Watch reads a job that another instance runs.
	PollInterval time.Duration
	// Lease is how long a claim lasts without progress: every batch
	// renews it. A job whose instance died is taken up again after it.
	Lease time.Duration
	// Concurrency is how many jobs one instance runs at once.
	Concurrency int
	Metrics     *metrics.Metrics
	// Receipts issues a job's deletion receipt once it has ended and the
	// last of its uploads is gone for good (receipt.Issuer.Settle); nil:
	// none.
	Receipts *receipt.Issuer
	// Tracer traces each run of a job in the trace of the request that
	// started it; nil traces none.
	Tracer *tracing.Tracer
}

// Jobs starts, lists, cancels, watches and runs deletion jobs.
type Jobs struct {
	client  *ent.Client
	deleter Deleter
	logger  *slog.Logger
	opts    Options

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) when a job of this process changes

	// beforeBatch, when set (tests only), runs before each batch of a job
	// is read, with the job's id and the claim's number; its error is the
	// batch's.
	beforeBatch func(ctx context.Context, jobID string, claim int) error
}

// New returns the Jobs of client, deleting through deleter.
func New(client *ent.Client, deleter Deleter, logger *slog.Logger, opts Options) *Jobs {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	return &Jobs{client: client, deleter: deleter, logger: logger, opts: opts, changed: make(chan struct{})}
}

// AnyOwner, as the owner of Get, List, Cancel and Watch, matches every
// owner's jobs: for operators (the command line), never for a caller.
const AnyOwner = "*"

// Errors of the API; a FilterError is the caller's filter's.
var (
	// ErrNotFound is a job that does not exist or is someone else's.
	ErrNotFound = errors.New("deletion job not found")
	// ErrNoSuchUser is StartUserErase of a user that does not exist.
	ErrNoSuchUser = errors.New("no such user")
	// ErrTooManyUnfinished is Start for an owner with MaxUnfinished jobs
	// queued or running.
	ErrTooManyUnfinished = fmt.Errorf("%d deletion jobs are queued or running already: wait for one to end, or cancel one", MaxUnfinished)
)

// MaxUnfinished bounds an owner's jobs queued or running at once: every
// claim reads past the jobs that wait (one owner's run one at a time), so
// one user's thousands of waiting jobs would slow every instance's claims,
// and on SQLite hold the write lock while they do.
const MaxUnfinished = 100

// FilterError is a filter that cannot be run (its message says why).
type FilterError struct{ Err error }

func (e *FilterError) Error() string { return e.Err.Error() }
func (e *FilterError) Unwrap() error { return e.Err }

// Filter is what Start deletes: the owner's uploads matching Where,
// created before the job starts.
type Filter struct {
	OwnerID string
	// Where is the filter of viewer.uploads; nil or empty matches every
	// upload of the owner.
	Where *ent.UploadWhereInput
	// DryRun counts what matches and deletes nothing: the job is
	// SUCCEEDED at once, with MatchedCount and DeletedCount 0.
	DryRun bool
	// Actor is who deletes, in the audit trail (audit.Caller for a
	// request): a caller's deletes go to the trash when DELETE_RETENTION
	// keeps them, the CLI's do not.
	Actor audit.Actor
}

// Start starts a FILTER job and returns it, QUEUED (or, for a dry run,
// SUCCEEDED). MatchedCount is fixed now: the uploads the filter matches,
// created until now; uploads created later are not the job's. Within a
// request sent with an Idempotency-Key, the job's id is recorded with it
// as the request's effect, and a retry of that request gets the same job
// back rather than a second one. A filter that cannot run is a
// *FilterError, and nothing is started.
func (j *Jobs) Start(ctx context.Context, f Filter) (*ent.DeletionJob, error) {
	var startedBefore string
	if idempotency.Recorded(ctx, &startedBefore) {
		return j.Get(ctx, startedBefore, f.OwnerID)
	}
	where := f.Where
	if where == nil {
		where = &ent.UploadWhereInput{}
	}
	filter, err := json.Marshal(where)
	if err != nil {
		return nil, &FilterError{err}
	}
	// At the databases' precision (PostgreSQL keeps microseconds), so
	// that the count now and the deletes later compare the same instant.
	cutoff := time.Now().Truncate(time.Microsecond)
	matching, err := filtered(j.client.Upload.Query(), f.OwnerID, where, cutoff)
	if err != nil {
		return nil, err
	}
	matched, err := matching.Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count matching uploads: %w", err)
	}
	create := func(tx *ent.Tx) *ent.DeletionJobCreate {
		c := tx.DeletionJob.Create().
			SetOwnerID(f.OwnerID).
			SetKind(deletionjob.KindFILTER).
			SetFilter(string(filter)).
			SetCutoff(cutoff).
			SetDryRun(f.DryRun).
			SetMatchedCount(matched)
		if f.DryRun {
			return c.SetStatus(deletionjob.StatusSUCCEEDED).SetStartedAt(cutoff).SetFinishedAt(cutoff)
		}
		return c
	}
	return j.create(ctx, f.Actor, create, !f.DryRun)
}

// StartUserErase starts a USER_ERASE job of userID (for the command line,
// `users delete`): first, now, it revokes the user's API keys and retires
// their sign-in identities, so nothing new arrives; the job then deletes
// all their uploads (whenever created) and, last, in one transaction with
// the job's success, their keys, webhooks, identities and the user record
// (RemoveUser). MatchedCount is the uploads they had when it started; an
// upload that arrives meanwhile is deleted too, and counted in
// DeletedCount. While an erase of the user is QUEUED or RUNNING, it is
// returned rather than a second one started (a retried command follows the
// first). Canceled, it leaves the keys revoked and the user in place. A
// user that does not exist is ErrNoSuchUser.
func (j *Jobs) StartUserErase(ctx context.Context, userID string) (*ent.DeletionJob, error) {
	exists, err := j.client.User.Query().Where(user.ID(userID)).Exist(ctx)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, userID)
	}
	running, err := j.client.DeletionJob.Query().
		Where(deletionjob.OwnerID(userID), deletionjob.KindEQ(deletionjob.KindUSER_ERASE),
			deletionjob.StatusIn(deletionjob.StatusQUEUED, deletionjob.StatusRUNNING)).
		First(ctx)
	if err == nil {
		return running, nil
	}
	if !ent.IsNotFound(err) {
		return nil, err
	}
	if _, _, err := RevokeAccess(ctx, j.client, userID); err != nil {
		return nil, err
	}
	matched, err := j.client.Upload.Query().Where(upload.OwnerID(userID)).Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count uploads: %w", err)
	}
	return j.create(ctx, audit.CLI, func(tx *ent.Tx) *ent.DeletionJobCreate {
		return tx.DeletionJob.Create().SetOwnerID(userID).SetKind(deletionjob.KindUSER_ERASE).SetMatchedCount(matched)
	}, false) // an operator's, one a user at a time
}

// create writes a job, due now (the runners are woken: queue.WakeOnDue),
// with the request's effect record; bounded, only if its owner has fewer
// than MaxUnfinished jobs queued or running (ErrTooManyUnfinished).
func (j *Jobs) create(ctx context.Context, actor audit.Actor, create func(tx *ent.Tx) *ent.DeletionJobCreate, bounded bool) (*ent.DeletionJob, error) {
	var job *ent.DeletionJob
	err := database.WithTx(ctx, j.client, func(tx *ent.Tx) (err error) {
		c := create(tx)
		if bounded {
			owner, _ := c.Mutation().OwnerID()
			unfinished, err := tx.DeletionJob.Query().
				Where(deletionjob.OwnerID(owner), deletionjob.StatusIn(deletionjob.StatusQUEUED, deletionjob.StatusRUNNING)).
				Count(ctx)
			if err != nil {
				return err
			}
			if unfinished >= MaxUnfinished {
				return ErrTooManyUnfinished
			}
		}
		job, err = c.
			SetActor(actor.Name).
			SetVia(string(actor.Via)).
			SetRequestID(requestlog.FromContext(ctx)).
			SetNextAttemptAt(time.Now()).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("create deletion job: %w", err)
		}
		return idempotency.Record(ctx, tx, job.ID)
	})
	if err != nil {
		return nil, err
	}
	j.opts.Metrics.DeletionJob("queued")
	if job.Status == deletionjob.StatusSUCCEEDED {
		j.opts.Metrics.DeletionJob("succeeded")
	}
	return job, nil
}

// Get returns the job jobID of ownerID (AnyOwner: of anyone). A job that
// does not exist, a malformed id and someone else's job are all
// ErrNotFound.
func (j *Jobs) Get(ctx context.Context, jobID, ownerID string) (*ent.DeletionJob, error) {
	if !ids.Valid(ids.JobPrefix, jobID) {
		return nil, ErrNotFound
	}
	q := j.client.DeletionJob.Query().Where(deletionjob.ID(jobID))
	if ownerID != AnyOwner {
		q.Where(deletionjob.OwnerID(ownerID))
	}
	job, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrNotFound
	}
	return job, err
}

// List returns ownerID's jobs (AnyOwner: everyone's), newest first, at
// most limit (0: 100), only those in statuses if any are given.
func (j *Jobs) List(ctx context.Context, ownerID string, limit int, statuses ...deletionjob.Status) ([]*ent.DeletionJob, error) {
	if limit <= 0 {
		limit = 100
	}
	q := j.client.DeletionJob.Query()
	if ownerID != AnyOwner {
		q.Where(deletionjob.OwnerID(ownerID))
	}
	if len(statuses) > 0 {
		q.Where(deletionjob.StatusIn(statuses...))
	}
	return q.Order(ent.Desc(deletionjob.FieldCreatedAt), ent.Desc(deletionjob.FieldID)).Limit(limit).All(ctx)
}

// Cancel stops ownerID's job jobID (AnyOwner: anyone's) and returns it
// as it then is. A QUEUED or RUNNING job becomes CANCELED at once: a
// batch being deleted when it commits rolls back (the job stops between
// batches), what was deleted before stays deleted, and DeletedCount says
// how many, for good. A finished job is returned as it is. ErrNotFound as
// for Get.
func (j *Jobs) Cancel(ctx context.Context, jobID, ownerID string) (*ent.DeletionJob, error) {
	job, err := j.Get(ctx, jobID, ownerID)
	if err != nil {
		return nil, err
	}
	var n int
	err = database.WithTx(ctx, j.client, func(tx *ent.Tx) (err error) {
		n, err = tx.DeletionJob.Update().
			Where(deletionjob.ID(job.ID), deletionjob.StatusIn(deletionjob.StatusQUEUED, deletionjob.StatusRUNNING)).
			SetStatus(deletionjob.StatusCANCELED).
			SetFinishedAt(time.Now()).
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		return j.settle(ctx, tx, job.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("cancel deletion job: %w", err)
	}
	if n > 0 {
		j.opts.Metrics.DeletionJob("canceled")
		j.notify()
	}
	return j.Get(ctx, jobID, ownerID)
}

// settle issues, in tx, the receipt of the job jobID that tx ends, if
// none of its uploads is still waiting for its own.
func (j *Jobs) settle(ctx context.Context, tx *ent.Tx, jobID string) error {
	if j.opts.Receipts == nil {
		return nil
	}
	return j.opts.Receipts.Settle(ctx, tx, jobID, 0)
}

// Prune deletes the jobs that finished before before, and returns how
// many (the janitor's, past JOB_RETENTION).
func (j *Jobs) Prune(ctx context.Context, before time.Time) (int, error) {
	return Prune(ctx, j.client, before)
}

// Prune deletes client's jobs that finished before before, and returns
// how many.
func Prune(ctx context.Context, client *ent.Client, before time.Time) (int, error) {
	n, err := client.DeletionJob.Delete().Where(deletionjob.FinishedAtLT(before)).Exec(ctx)
	if err != nil {
		return n, fmt.Errorf("prune deletion jobs: %w", err)
	}
	return n, nil
}

// Finished reports whether a job has ended (SUCCEEDED, FAILED, CANCELED).
func Finished(job *ent.DeletionJob) bool {
	switch job.Status {
	case deletionjob.StatusSUCCEEDED, deletionjob.StatusFAILED, deletionjob.StatusCANCELED:
		return true
	}
	return false
}

// notRestoredAfter leaves out the uploads restored from the trash after
// cutoff: they were not there when the job started (a restored upload
// keeps its created_at), so they are not the job's. The audit trail says
// when (its index on owner_id, upload_id serves the lookup).
func notRestoredAfter(cutoff time.Time) predicate.Upload {
	return func(s *sql.Selector) {
		ev := sql.Table(auditevent.Table).As("restored_event")
		s.Where(sql.NotExists(
			sql.Dialect(s.Dialect()).Select(ev.C(auditevent.FieldID)).From(ev).Where(sql.And(
				sql.ColumnsEQ(ev.C(auditevent.FieldOwnerID), s.C(upload.FieldOwnerID)),
				sql.ColumnsEQ(ev.C(auditevent.FieldUploadID), s.C(upload.FieldID)),
				sql.EQ(ev.C(auditevent.FieldKind), auditevent.KindRESTORED.String()),
				sql.GT(ev.C(auditevent.FieldCreatedAt), cutoff),
			)),
		))
	}
}

// filtered narrows q to ownerID's uploads matching where and created at
// cutoff or before and not restored from the trash after it (zero:
// whenever, restored or not).
func filtered(q *ent.UploadQuery, ownerID string, where *ent.UploadWhereInput, cutoff time.Time) (*ent.UploadQuery, error) {
	q.Where(upload.OwnerID(ownerID))
	if !cutoff.IsZero() {
		q.Where(upload.CreatedAtLTE(cutoff), notRestoredAfter(cutoff))
	}
	p, err := where.P()
	switch {
	// where: {} is every upload; an empty filter inside one ({not: {}})
	// is refused, not taken for every upload.
	case err == ent.ErrEmptyUploadWhereInput:
	case err != nil:
		return nil, &FilterError{err}
	default:
		q.Where(p)
	}
	return q, nil
}
