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
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/tracing"
)

// ObjectDiscarder removes everything stored under a key: incomplete
// multipart uploads and the object with all its versions. Removing what is
// already gone succeeds.
type ObjectDiscarder interface {
	Discard(ctx context.Context, bucket, key, multipartID string) error
	Abort(ctx context.Context, bucket, key, multipartID string) error
	AbortAll(ctx context.Context, bucket, key string) error
	DeleteKeys(ctx context.Context, bucket string, keys []string) (failed map[string]error)
	// PlainDeletes reports whether removing a key of bucket is known to
	// take one request (no versions to list first), without asking S3.
	PlainDeletes(bucket string) bool
}

// Fixed behaviour, not settings.
const (
	lease      = time.Minute // how long a claim lasts
	minBackoff = time.Second // delay after the first failure
	batchSize  = 1000        // purges claimed per poll; objectstore.DeleteKeys splits their keys into DeleteObjects requests
	// PendingMargin is how long past the upload timeout a PENDING upload
	// may still be storing: a request S3 is still finishing may land a
	// little late. Its purge waits that long; after it, the upload is stuck.
	PendingMargin = time.Minute
	// finishGather is how long the rows of finished purges gather before
	// one transaction ends them (doneRows).
	finishGather = 20 * time.Millisecond
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
	// Commits is the commit group the ends of finished purges share with
	// the deletes (database.Group); nil: a group of their own.
	Commits *database.Group
	// Receipts issues the deletion receipts of the uploads whose objects
	// are gone; nil: none are issued.
	Receipts *receipt.Issuer
	// Tracer traces each purge; nil traces none.
	Tracer *tracing.Tracer
	// Refused is told of each purge whose object S3 refused to remove as
	// a version it must keep (objectstore.Protected), as Object Lock keeps
	// one whose legal hold is on: the legal-hold mirror then sets the
	// object's holds as the holds say again (objectlock.Mirror.Refused).
	// nil: nobody is told.
	Refused func(context.Context, *ent.ObjectPurge)
}

// Purger runs purges.
type Purger struct {
	client  *ent.Client
	objects ObjectDiscarder
	logger  *slog.Logger
	opts    Options
	done    *doneRows
	inline  inlineBreaker  // when inline clean-ups resume (inline.go)
	shared  sharedRemovals // inline removals sent together (shared.go)
}

// New returns a Purger.
func New(client *ent.Client, objects ObjectDiscarder, logger *slog.Logger, opts Options) *Purger {
	if opts.Commits == nil {
		opts.Commits = database.NewGroup(client)
	}
	p := &Purger{client: client, objects: objects, logger: logger, opts: opts, shared: sharedRemovals{objects: objects}}
	// Well within the lease of an inline attempt (twice the inline
	// timeout), so that the background loop never takes a purge whose
	// object is gone only because its row waits here.
	p.done = newDoneRows(p.finish, logger, min(finishGather, opts.InlineTimeout/2))
	return p
}

// Flush waits until the rows of the purges finished so far are deleted.
// Shutdown calls it, so that a restart does not redo purges already done.
func (p *Purger) Flush() { p.done.wait() }

// Request is who asked for a delete, through what, and when: the time of
// its DELETED audit events (audit.RecordAt). A purge carries it to its
// upload's receipt, which then reads no event back. The zero Request
// carries nothing: the receipt reads the event.
type Request struct {
	Actor audit.Actor
	At    time.Time
}

// ScheduleFor records, inside tx, that the bytes of the uploads, deleted in
// the same transaction, must be removed from the bucket. Each purge carries
// what the "purged" event of its upload tells (finish records it). It returns the
// purges to attempt right away (AttemptInline), in the uploads' order: none
// for an upload that never stored anything, nor for one whose bytes may
// still be arriving.
//
// With a keepUntil in the future, the objects of uploads that finished
// storing stay until then (the trash): their purges are due at keepUntil,
// unclaimed, so that Unschedule can still take them back.
//
// A purge attempted inline is due only after twice the inline timeout: it
// counts as claimed by its caller, so the background loop does not race
// the inline attempt, yet picks it up soon if the process dies first.
//
// In a deletion job's batch (receipt.WithJob), each purge names the job,
// whose receipt then waits for the upload's.
//
// asked, if not the zero Request, is the delete's request, carried to the
// receipts; the purges' created_at is then its time.
func (p *Purger) ScheduleFor(ctx context.Context, tx *ent.Tx, keepUntil time.Time, asked Request, uploads ...*ent.Upload) ([]*ent.ObjectPurge, error) {
	now := time.Now()
	keep := keepUntil.After(now)
	jobID := receipt.JobOf(ctx)
	var planned []*ent.ObjectPurge
	for _, u := range uploads {
		if u.ObjectKey == "" {
			continue // a failed upload that never stored anything
		}
		job := &ent.ObjectPurge{
			UploadID: u.ID, OwnerID: u.OwnerID, Filename: u.Filename, Size: u.Size, UploadStatus: u.Status.String(),
			Bucket: u.Bucket, ObjectKey: u.ObjectKey, MultipartUploadID: u.MultipartUploadID, DeletionJobID: jobID,
			Attempts: 1, NextAttemptAt: now.Add(2 * p.opts.InlineTimeout), CreatedAt: now,
		}
		if !asked.At.IsZero() {
			// To the microsecond, as the event's (and PostgreSQL's): the
			// receipt tells the same instant whichever way it learns it.
			job.CreatedAt = asked.At.Truncate(time.Microsecond)
			job.RequestedBy, job.RequestedVia = asked.Actor.Name, string(asked.Actor.Via)
		}
		if u.Status == upload.StatusPENDING {
			// Its bytes may still be on their way: a purge now could run
			// before the object exists, leaving it unknown once it arrives.
			// The purge waits until storing must have stopped (the upload
			// began before now), then aborts every multipart upload of the
			// key, recorded or not (a crash may have come between starting
			// one and recording its id).
			job.NextAttemptAt, job.AbortAllMultipart = now.Add(p.opts.UploadTimeout+PendingMargin), true
		} else if keep {
			job.NextAttemptAt, job.Attempts = keepUntil, 0
		}
		planned = append(planned, job)
	}
	if len(planned) == 0 {
		return nil, nil
	}
	scheduled, err := p.insertPurges(ctx, tx, planned)
	if err != nil {
		return nil, fmt.Errorf("schedule %d purges: %w", len(planned), err)
	}
	jobs := scheduled[:0]
	for _, job := range scheduled {
		if !job.AbortAllMultipart && job.Attempts > 0 {
			jobs = append(jobs, job)
		}
	}
	return jobs, nil
}

// ScheduleStopped records, inside tx, that everything stored under the keys
// of uploads whose storing stopped without finishing (their uploader
// crashed) must be removed now: the object, and every multipart upload of
// the key, recorded or not. It returns the purges, to attempt right away.
func (p *Purger) ScheduleStopped(ctx context.Context, tx *ent.Tx, uploads ...*ent.Upload) ([]*ent.ObjectPurge, error) {
	now := time.Now()
	var creates []*ent.ObjectPurgeCreate
	for _, u := range uploads {
		if u.ObjectKey != "" {
			creates = append(creates, tx.ObjectPurge.Create().
				SetUploadID(u.ID).
				SetBucket(u.Bucket).
				SetObjectKey(u.ObjectKey).
				SetMultipartUploadID(u.MultipartUploadID).
				SetAbortAllMultipart(true).
				SetAttempts(1).
				SetNextAttemptAt(now.Add(2*p.opts.InlineTimeout)))
		}
	}
	if len(creates) == 0 {
		return nil, nil
	}
	jobs, err := tx.ObjectPurge.CreateBulk(creates...).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedule %d purges: %w", len(creates), err)
	}
	return jobs, nil
}

// Attempt tries once to remove the object of a claimed purge. On success the
// purge row is queued for deletion (see doneRows); on failure it is
// rescheduled with backoff and the error returned. No other record can
// use the object: the database holds each key once (the uploads' unique
// (bucket, object_key) index), and a key holds its upload's id.
func (p *Purger) Attempt(ctx context.Context, job *ent.ObjectPurge) error {
	return p.attempt(ctx, job, false)
}

// attempt is Attempt; shared sends the removal of an object without a
// multipart upload, on a bucket whose deletes take one request each,
// together with those of other callers' that arrive meanwhile
// (sharedRemovals), as a delete's inline attempt does. On a versioned
// bucket every removal lists the key's versions first: those go alone,
// side by side, as before.
func (p *Purger) attempt(ctx context.Context, job *ent.ObjectPurge, shared bool) (err error) {
	defer func() { p.opts.Metrics.PurgeAttempt(err) }()
	switch {
	case job.AbortAllMultipart:
		if err = p.objects.AbortAll(ctx, job.Bucket, job.ObjectKey); err == nil {
			err = p.objects.Discard(ctx, job.Bucket, job.ObjectKey, job.MultipartUploadID)
		}
	case shared && job.MultipartUploadID == "" && p.objects.PlainDeletes(job.Bucket):
		err = p.shared.discard(ctx, job.Bucket, job.ObjectKey)
	default:
		err = p.objects.Discard(ctx, job.Bucket, job.ObjectKey, job.MultipartUploadID)
	}
	if err != nil {
		return p.fail(ctx, job, err)
	}
	p.done.add(job)
	p.logger.InfoContext(ctx, "object purged", "upload_id", job.UploadID, "bucket", job.Bucket, "key", job.ObjectKey, "attempts", job.Attempts)
	return nil
}

func (p *Purger) fail(ctx context.Context, job *ent.ObjectPurge, cause error) error {
	p.reschedule(ctx, job, cause)
	p.refused(ctx, job, cause)
	p.logger.WarnContext(ctx, "object purge failed; will retry", "upload_id", job.UploadID, "key", job.ObjectKey, "attempts", job.Attempts, "error", cause)
	return cause
}

// refused tells Options.Refused of a purge S3 refused as protected.
func (p *Purger) refused(ctx context.Context, job *ent.ObjectPurge, cause error) {
	if p.opts.Refused != nil && objectstore.Protected(cause) {
		p.opts.Refused(ctx, job)
	}
}

// reschedule records a failed attempt: the purge is due again after a
// backoff.
func (p *Purger) reschedule(ctx context.Context, job *ent.ObjectPurge, cause error) {
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
}

// backoff is the wait after a purge's attempts failed: the one rule of
// background retries (internal/backoff), from minBackoff up to MaxBackoff.
func (p *Purger) backoff(attempts int) time.Duration {
	return backoff.Delay(attempts, minBackoff, p.opts.MaxBackoff)
}
