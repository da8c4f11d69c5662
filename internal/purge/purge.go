// Package purge removes deleted uploads' objects from the bucket, durably.
//
// Deleting an upload writes an ObjectPurge row in the same transaction that
// deletes the upload record. The object is then removed at once (Attempt) and
// the row deleted; when S3 fails, the row stays and Run retries it with
// backoff, across restarts, until the object is gone. A row is claimed by
// moving its next_attempt_at forward by a lease, in one conditional UPDATE, so
// that two purgers (goroutines or instances) never work on it at once and a
// claim whose holder died expires by itself.
package purge

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/objectstore"
)

// ObjectDiscarder removes everything stored under a key: incomplete
// multipart uploads and the object with all its versions. Removing what is
// already gone succeeds.
type ObjectDiscarder interface {
	Discard(ctx context.Context, bucket, key, multipartID string) error
	Abort(ctx context.Context, bucket, key, multipartID string) error
	AbortAll(ctx context.Context, bucket, key string) error
}

// Fixed behaviour, not settings.
const (
	lease      = time.Minute // how long a claim lasts
	minBackoff = time.Second // delay after the first failure
	batchSize  = 100         // purges claimed per poll
	// pendingMargin is how long after a PENDING upload's deadline its purge
	// waits: a request S3 is still finishing may land a little late.
	pendingMargin = time.Minute
)

// Options are the purger's settings, all required.
type Options struct {
	PollInterval  time.Duration // how often Run looks for due purges
	MaxBackoff    time.Duration // longest delay between attempts
	InlineTimeout time.Duration // bounds the attempt made right after a delete
	// UploadTimeout is the longest time storing one upload may take: the
	// purge of an upload deleted while PENDING waits it out.
	UploadTimeout time.Duration
	Metrics       *metrics.Metrics
}

// Purger runs purges.
type Purger struct {
	client  *ent.Client
	objects ObjectDiscarder
	logger  *slog.Logger
	opts    Options
	done    doneRows
}

// New returns a Purger.
func New(client *ent.Client, objects ObjectDiscarder, logger *slog.Logger, opts Options) *Purger {
	return &Purger{client: client, objects: objects, logger: logger, opts: opts, done: doneRows{client: client}}
}

// ScheduleFor records, inside tx, that the bytes of the upload u, deleted
// in the same transaction, must be removed from the bucket. It returns the
// purge to attempt right away (AttemptInline), or nil when there is none to
// attempt now: u never stored anything, or its bytes may still be arriving.
//
// A purge attempted inline is due only after twice the inline timeout: it
// counts as claimed by its caller, so the background loop does not race
// the inline attempt, yet picks it up soon if the process dies first.
func (p *Purger) ScheduleFor(ctx context.Context, tx *ent.Tx, u *ent.Upload) (*ent.ObjectPurge, error) {
	if u.ObjectKey == "" {
		return nil, nil // a failed upload that never stored anything
	}
	create := tx.ObjectPurge.Create().
		SetUploadID(u.ID).
		SetBucket(u.Bucket).
		SetObjectKey(u.ObjectKey).
		SetMultipartUploadID(u.MultipartUploadID).
		SetAttempts(1)
	if u.Status == upload.StatusPENDING {
		// Its bytes may still be on their way: a purge now could run before
		// the object exists, leaving it unknown once it arrives. The purge
		// waits until storing must have stopped, and then aborts every
		// multipart upload of the key, recorded or not (a crash may have
		// come between starting one and recording its id).
		_, err := create.
			SetNextAttemptAt(u.CreatedAt.Add(p.opts.UploadTimeout + pendingMargin)).
			SetAbortAllMultipart(true).
			Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("schedule purge: %w", err)
		}
		return nil, nil
	}
	job, err := create.SetNextAttemptAt(time.Now().Add(2 * p.opts.InlineTimeout)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedule purge: %w", err)
	}
	return job, nil
}

// InlineContext bounds an S3 clean-up made on a caller's behalf: by the
// inline timeout, detached from the caller's cancellation (a caller hanging
// up must not cut it short), and with a single try, so that when S3 is down
// the caller gets its answer at once and the background loop retries.
// Under WithRequestBudget, every clean-up of the request shares one inline
// timeout: once it is spent, the context returned is already done.
func (p *Purger) InlineContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := p.opts.InlineTimeout
	if b, ok := ctx.Value(budgetKey{}).(*budget); ok {
		timeout = b.remaining(timeout)
	}
	return context.WithTimeout(objectstore.WithoutRetries(context.WithoutCancel(ctx)), timeout)
}

// AttemptInline makes the attempt right after a delete, within
// InlineContext. When the request's budget is spent it does not try: the
// purge stays due for the background loop, untouched.
func (p *Purger) AttemptInline(ctx context.Context, job *ent.ObjectPurge) error {
	ctx, cancel := p.InlineContext(ctx)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.Attempt(ctx, job)
}

type budgetKey struct{}

// budget is one request's time for inline clean-ups, started by the first.
type budget struct {
	mu       sync.Mutex
	deadline time.Time
}

func (b *budget) remaining(total time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(total)
	}
	return time.Until(b.deadline)
}

// WithRequestBudget makes every inline clean-up under ctx share one inline
// timeout, so that a request running many deletes (aliased mutations) while
// S3 is slow answers within that time, not one timeout per delete; what
// does not fit is left to the background loop.
func WithRequestBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, budgetKey{}, &budget{})
}

// Attempt tries once to remove the object of a claimed purge. On success the
// purge row is deleted; on failure it is rescheduled with backoff and the
// error returned.
func (p *Purger) Attempt(ctx context.Context, job *ent.ObjectPurge) (err error) {
	defer func() { p.opts.Metrics.PurgeAttempt(err) }()
	// An object that another upload still references must survive; this is
	// checked here, right before deleting, so that no path can skip it. The
	// check and the delete are not atomic: that is safe because object keys
	// contain the upload's id, so no new record can come to reference a key
	// being purged (only copies made on purpose, which reconcile handles).
	shared, err := p.client.Upload.Query().
		Where(upload.Bucket(job.Bucket), upload.ObjectKey(job.ObjectKey)).
		Exist(ctx)
	if err != nil {
		return p.fail(ctx, job, fmt.Errorf("check references: %w", err))
	}
	if job.AbortAllMultipart {
		err = p.objects.AbortAll(ctx, job.Bucket, job.ObjectKey)
	}
	switch {
	case err != nil:
	case shared:
		// The object stays, but an incomplete multipart upload was this
		// upload's alone.
		err = p.objects.Abort(ctx, job.Bucket, job.ObjectKey, job.MultipartUploadID)
	default:
		err = p.objects.Discard(ctx, job.Bucket, job.ObjectKey, job.MultipartUploadID)
	}
	if err != nil {
		return p.fail(ctx, job, err)
	}
	// A failed row delete only means the (idempotent) purge runs again later.
	if err := p.done.delete(ctx, job.ID); err != nil {
		return fmt.Errorf("finish purge %d: %w", job.ID, err)
	}
	p.logger.InfoContext(ctx, "object purged", "upload_id", job.UploadID, "bucket", job.Bucket, "key", job.ObjectKey, "kept_shared", shared, "attempts", job.Attempts)
	return nil
}

func (p *Purger) fail(ctx context.Context, job *ent.ObjectPurge, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	// The request's context may be what failed; recording the failure must not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := p.client.ObjectPurge.UpdateOneID(job.ID).
		SetNextAttemptAt(time.Now().Add(p.backoff(job.Attempts))).
		SetLastError(msg).
		Exec(ctx)
	if err != nil && !ent.IsNotFound(err) {
		// The lease still expires, so the purge is retried anyway.
		p.logger.ErrorContext(ctx, "record purge failure", "purge_id", job.ID, "error", err)
	}
	p.logger.WarnContext(ctx, "object purge failed; will retry", "upload_id", job.UploadID, "key", job.ObjectKey, "attempts", job.Attempts, "error", cause)
	return cause
}

// backoff is exponential in the number of attempts, capped, with jitter so
// that purges failed by one outage do not all retry at the same instant.
func (p *Purger) backoff(attempts int) time.Duration {
	d := p.opts.MaxBackoff
	if attempts < 31 {
		d = min(minBackoff<<max(attempts-1, 0), p.opts.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// outageThreshold is how many purges in a row may fail before a pass gives
// up: S3 is most likely down, and the rest stay due (unclaimed) for the next
// pass instead of each being tried, failed and pushed back.
const outageThreshold = 3

// RunOnce claims the purges that are due, up to BatchSize, and attempts each.
// It returns how many it attempted and how many objects were purged.
func (p *Purger) RunOnce(ctx context.Context) (attempted, purged int, err error) {
	now := time.Now()
	due, err := p.client.ObjectPurge.Query().
		Where(objectpurge.NextAttemptAtLTE(now)).
		Order(objectpurge.ByNextAttemptAt()).
		Limit(batchSize).
		All(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list due purges: %w", err)
	}
	failedInARow := 0
	for _, job := range due {
		if failedInARow >= outageThreshold {
			break
		}
		claimed, err := p.claim(ctx, job, now)
		if err != nil {
			return attempted, purged, err
		}
		if !claimed {
			continue // another purger took it
		}
		attempted++
		// The purger is the retry loop, with its own backoff: one try each.
		attemptCtx, cancel := context.WithTimeout(objectstore.WithoutRetries(ctx), p.attemptTimeout())
		if p.Attempt(attemptCtx, job) == nil {
			purged++
			failedInARow = 0
		} else {
			failedInARow++
		}
		cancel()
	}
	return attempted, purged, nil
}

// claim takes job for one lease if it is still due; false means another
// purger claimed it first.
func (p *Purger) claim(ctx context.Context, job *ent.ObjectPurge, now time.Time) (bool, error) {
	n, err := p.client.ObjectPurge.Update().
		Where(objectpurge.ID(job.ID), objectpurge.NextAttemptAtLTE(now)).
		SetNextAttemptAt(now.Add(lease)).
		AddAttempts(1).
		Save(ctx)
	if err != nil {
		return false, fmt.Errorf("claim purge %d: %w", job.ID, err)
	}
	job.Attempts++
	return n == 1, nil
}

// attemptTimeout keeps one S3 call well inside the lease.
func (p *Purger) attemptTimeout() time.Duration {
	return min(lease/2, 10*time.Second)
}

// Run purges due objects every PollInterval until ctx is cancelled. After a
// full batch that went well it goes on at once: a backlog (after an
// outage) drains as fast as S3 allows.
func (p *Purger) Run(ctx context.Context) {
	ticker := time.NewTicker(p.opts.PollInterval)
	defer ticker.Stop()
	for {
		attempted, purged, err := p.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger.ErrorContext(ctx, "purge pass failed", "error", err)
		}
		if err == nil && attempted == batchSize && purged == attempted {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// QueueStats returns how many purges are pending and how old the oldest is.
func (p *Purger) QueueStats(ctx context.Context) (int, time.Duration, error) {
	pending, err := p.client.ObjectPurge.Query().Count(ctx)
	if err != nil || pending == 0 {
		return pending, 0, err
	}
	oldest, err := p.client.ObjectPurge.Query().Order(objectpurge.ByCreatedAt()).First(ctx)
	if err != nil {
		return 0, 0, err
	}
	return pending, time.Since(oldest.CreatedAt), nil
}

// doneRows deletes the rows of finished purges, many in one statement:
// while one DELETE commits, the rows finished meanwhile queue up for the
// next. Under load the database then commits once per group rather than
// once per purge; alone, a row is deleted at once. Each caller still waits
// for its own row's delete.
type doneRows struct {
	client  *ent.Client
	mu      sync.Mutex
	busy    bool
	ids     []int
	waiters []chan error
}

func (d *doneRows) delete(ctx context.Context, id int) error {
	result := make(chan error, 1)
	d.mu.Lock()
	d.ids, d.waiters = append(d.ids, id), append(d.waiters, result)
	if d.busy { // the running group's leader takes this row next
		d.mu.Unlock()
		return <-result
	}
	d.busy = true
	for len(d.ids) > 0 {
		ids, waiters := d.ids, d.waiters
		d.ids, d.waiters = nil, nil
		d.mu.Unlock()
		_, err := d.client.ObjectPurge.Delete().Where(objectpurge.IDIn(ids...)).Exec(ctx)
		for _, w := range waiters {
			w <- err
		}
		d.mu.Lock()
	}
	d.busy = false
	d.mu.Unlock()
	return <-result
}
