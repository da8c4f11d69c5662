// Package objectlock mirrors legal holds to the bucket: where the bucket
// has S3 Object Lock, every version of a held upload's object carries an
// S3 legal hold, so that not even the bucket's own credentials can delete
// it; the hold's release (or lapse) turns it off again.
//
// The database stays the source of truth. Placing or releasing a hold, and
// storing an upload of a held owner, writes a note (a legal_hold_syncs row)
// in the same transaction; the Mirror, a worker of the one queue
// (internal/queue), claims the notes and makes each object's versions say
// what the holds say at that moment, retrying with backoff when S3 fails.
// A failure of the mirror never blocks, delays or loses a hold: the hold
// and its note commit together, whatever S3 does.
package objectlock

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/hold"
	"github.com/safedelete/uploads/ent/legalholdsync"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/queue"
)

// QueueKind names the notes in the queue's wake-ups.
const QueueKind = "legalhold"

// forever stands for a hold without an until (holds.Forever; this package
// is below internal/holds).
var forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Metrics records what the mirror did.
type Metrics interface {
	// LegalHoldSync records one note's attempt: "on", "off", "unlocked"
	// (the bucket has no Object Lock: nothing to do) or "retry".
	LegalHoldSync(outcome string)
}

// Options tune a Mirror.
type Options struct {
	// PollInterval is how often to look for due notes besides the
	// wake-ups (default DefaultPollInterval): a note written due now wakes
	// the mirror, and one it puts off (a retry, a hold's until) wakes it
	// then, so the poll only finds the notes of an instance that died.
	PollInterval time.Duration
	MaxBackoff   time.Duration // the longest wait between two attempts of a note
	Metrics      Metrics       // may be nil
}

// Mirror applies the notes.
type Mirror struct {
	client *ent.Client
	store  *objectstore.Store
	logger *slog.Logger
	opts   Options

	buckets sync.Map // bucket name -> bool: whether it has Object Lock, once known
	wakeup  chan struct{}
}

// DefaultPollInterval is Options.PollInterval's default.
const DefaultPollInterval = time.Minute

// New returns the mirror of client's holds onto store's buckets. store
// should try S3 once per call (objectstore's Once): the mirror retries.
func New(client *ent.Client, store *objectstore.Store, logger *slog.Logger, opts Options) *Mirror {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	return &Mirror{client: client, store: store, logger: logger, opts: opts, wakeup: make(chan struct{}, 1)}
}

// Lockable reports whether bucket has Object Lock, asking S3 the first
// time only (a bucket cannot lose its Object Lock; one gaining it is seen
// at the next start).
func (m *Mirror) Lockable(ctx context.Context, bucket string) (bool, error) {
	if known, ok := m.buckets.Load(bucket); ok {
		return known.(bool), nil
	}
	enabled, err := m.store.ObjectLockEnabled(ctx, bucket)
	if err != nil {
		return false, err
	}
	m.buckets.Store(bucket, enabled)
	if enabled {
		m.logger.InfoContext(ctx, "objectlock: the bucket has Object Lock: legal holds are mirrored to its objects", "bucket", bucket)
	}
	return enabled, nil
}

// mayLock reports, without a round trip, whether bucket may have Object
// Lock: true unless it is known not to.
func (m *Mirror) mayLock(bucket string) bool {
	known, ok := m.buckets.Load(bucket)
	return !ok || known.(bool)
}

// Enqueue writes, in tx, a note due now for the object of each upload the
// holds of userID cover (only its upload uploadID, when given), whether
// stored or in the trash. Placing and releasing a hold call it.
func Enqueue(ctx context.Context, tx *ent.Tx, userID, uploadID string) error {
	stored := tx.Upload.Query().Where(upload.OwnerID(userID), upload.ObjectKeyNEQ(""))
	trashed := tx.DeletedUpload.Query().Where(deletedupload.OwnerID(userID), deletedupload.ObjectKeyNEQ(""))
	if uploadID != "" {
		stored.Where(upload.ID(uploadID))
		trashed.Where(deletedupload.ID(uploadID))
	}
	uploads, err := stored.Select(upload.FieldID, upload.FieldBucket, upload.FieldObjectKey).All(ctx)
	if err != nil {
		return fmt.Errorf("legal hold notes: %w", err)
	}
	entries, err := trashed.Select(deletedupload.FieldID, deletedupload.FieldBucket, deletedupload.FieldObjectKey).All(ctx)
	if err != nil {
		return fmt.Errorf("legal hold notes: %w", err)
	}
	now := time.Now()
	notes := make([]*ent.LegalHoldSyncCreate, 0, len(uploads)+len(entries))
	note := func(id, bucket, key string) {
		notes = append(notes, tx.LegalHoldSync.Create().
			SetUploadID(id).SetOwnerID(userID).SetBucket(bucket).SetObjectKey(key).SetNextAttemptAt(now))
	}
	for _, u := range uploads {
		note(u.ID, u.Bucket, u.ObjectKey)
	}
	for _, d := range entries {
		note(d.ID, d.Bucket, d.ObjectKey)
	}
	for len(notes) > 0 {
		n := min(len(notes), 1000)
		if err := tx.LegalHoldSync.CreateBulk(notes[:n]...).Exec(ctx); err != nil {
			return fmt.Errorf("legal hold notes: %w", err)
		}
		notes = notes[n:]
	}
	return nil
}

// Stored writes, in tx, the note of upload u, just stored, if its bucket
// may have Object Lock and a hold covers it: a hold on its owner covers
// their future uploads. The upload path calls it after its object is
// written, so that a hold placed meanwhile is either seen here or notes
// the upload after the object exists.
func (m *Mirror) Stored(ctx context.Context, tx *ent.Tx, u *ent.Upload) error {
	if m == nil || u.ObjectKey == "" || !m.mayLock(u.Bucket) {
		return nil
	}
	held, err := tx.Hold.Query().Where(covering(u.OwnerID, u.ID, time.Now())).Exist(ctx)
	if err != nil || !held {
		return err
	}
	return tx.LegalHoldSync.Create().
		SetUploadID(u.ID).SetOwnerID(u.OwnerID).SetBucket(u.Bucket).SetObjectKey(u.ObjectKey).
		SetNextAttemptAt(time.Now()).
		Exec(ctx)
}

// Refused is the purger's report that S3 refused to remove a version of
// the object of a purge as protected, as it refuses one whose legal hold
// is on (objectstore.Protected). The holds of a deleted upload are off once its note is applied, but
// some servers (versitygw) keep a version's hold on when it is turned
// off while the removal of the newer version makes that one current, and
// the purge would then be refused for good. Unless a note of the upload
// waits already, Refused writes one due now: the mirror sets the holds as
// the holds say again, and the purge's next attempt finds them off (or,
// if a hold does cover the upload, still on).
func (m *Mirror) Refused(ctx context.Context, job *ent.ObjectPurge) {
	if m == nil || !m.mayLock(job.Bucket) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.noteAgain(ctx, job); err != nil {
		m.logger.ErrorContext(ctx, "objectlock: note a purge refused", "upload_id", job.UploadID, "error", err)
	}
}

func (m *Mirror) noteAgain(ctx context.Context, job *ent.ObjectPurge) error {
	waiting, err := m.client.LegalHoldSync.Query().
		Where(legalholdsync.UploadID(job.UploadID), legalholdsync.Bucket(job.Bucket), legalholdsync.ObjectKey(job.ObjectKey)).
		Exist(ctx)
	if err != nil || waiting {
		return err
	}
	owner := job.OwnerID
	if owner == "" { // a purge of the trash names no owner; its entry does
		if owner, err = m.ownerOf(ctx, job.UploadID); err != nil {
			return err
		}
	}
	if owner == "" {
		return nil // a purge of no one's upload (reconcile's): no hold covers it
	}
	return m.client.LegalHoldSync.Create().
		SetUploadID(job.UploadID).SetOwnerID(owner).SetBucket(job.Bucket).SetObjectKey(job.ObjectKey).
		SetNextAttemptAt(time.Now()).
		Exec(ctx)
}

// ownerOf returns the owner of the upload uploadID, in the trash or
// stored; "" once it is gone.
func (m *Mirror) ownerOf(ctx context.Context, uploadID string) (string, error) {
	owner, err := m.client.DeletedUpload.Query().Where(deletedupload.ID(uploadID)).Select(deletedupload.FieldOwnerID).String(ctx)
	if ent.IsNotFound(err) {
		owner, err = m.client.Upload.Query().Where(upload.ID(uploadID)).Select(upload.FieldOwnerID).String(ctx)
	}
	if ent.IsNotFound(err) {
		return "", nil
	}
	return owner, err
}

// covering matches the holds in force at now on the upload uploadID of
// ownerID: its own, and its owner's.
func covering(ownerID, uploadID string, now time.Time) predicate.Hold {
	return hold.And(
		hold.UserID(ownerID),
		hold.ReleasedAtIsNil(),
		hold.Or(hold.UploadIDIsNil(), hold.UploadID(uploadID)),
		hold.Or(hold.UntilIsNil(), hold.UntilGT(now)),
	)
}

// heldUntil returns until when the holds keep the upload of a note: zero
// when none does, or when the upload is gone (deleted, its purge pending),
// so that its object's versions can go.
func (m *Mirror) heldUntil(ctx context.Context, note *ent.LegalHoldSync, now time.Time) (time.Time, error) {
	exists, err := m.client.Upload.Query().Where(upload.ID(note.UploadID)).Exist(ctx)
	if err == nil && !exists {
		exists, err = m.client.DeletedUpload.Query().Where(deletedupload.ID(note.UploadID)).Exist(ctx)
	}
	if err != nil || !exists {
		return time.Time{}, err
	}
	active, err := m.client.Hold.Query().Where(covering(note.OwnerID, note.UploadID, now)).All(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var end time.Time
	for _, h := range active {
		until := forever
		if h.Until != nil {
			until = *h.Until
		}
		if until.After(end) {
			end = until
		}
	}
	return end, nil
}

// lease is how long a claimed note stays claimed.
const lease = time.Minute

// concurrency is how many notes are applied at a time.
const concurrency = 4

// Run applies due notes until ctx ends: every PollInterval, and whenever
// wake receives (a note was written due now).
//
// It first asks whether the store's bucket has Object Lock, so that the
// upload path, which reads the answer, asks the database nothing when it
// has not (see Stored).
func (m *Mirror) Run(ctx context.Context, wake <-chan struct{}) {
	if _, err := m.Lockable(ctx, m.store.Bucket()); err != nil && ctx.Err() == nil {
		m.logger.WarnContext(ctx, "objectlock: could not tell whether the bucket has Object Lock; asking again at the first hold note", "error", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				m.wake()
			}
		}
	}()
	queue.Work(ctx, concurrency, m.opts.PollInterval, m.wakeup, m.claim,
		func(err error) { m.logger.ErrorContext(ctx, "objectlock: claim notes", "error", err) },
		func(ctx context.Context, note *ent.LegalHoldSync) { _ = m.Attempt(ctx, note) })
}

func (m *Mirror) wake() {
	select {
	case m.wakeup <- struct{}{}:
	default: // one is pending already
	}
}

// wakeAt wakes the mirror at t, for a note it put off until then, unless
// the poll comes first.
func (m *Mirror) wakeAt(t time.Time) {
	if d := time.Until(t); d < m.opts.PollInterval {
		time.AfterFunc(d, m.wake)
	}
}

func (m *Mirror) claim(ctx context.Context, n int) ([]*ent.LegalHoldSync, error) {
	now := time.Now()
	return queue.Claim[*ent.LegalHoldSync](ctx, m.client, queue.Batch{
		Table: legalholdsync.Table, Limit: n, Now: now, LeaseEnd: now.Add(lease), Returning: legalholdsync.Columns,
	})
}

// RunOnce claims and applies the notes due now, one by one (tests).
func (m *Mirror) RunOnce(ctx context.Context) (applied int, err error) {
	notes, err := m.claim(ctx, 100)
	if err != nil {
		return 0, err
	}
	for _, note := range notes {
		if m.Attempt(ctx, note) == nil {
			applied++
		}
	}
	return applied, nil
}

// Attempt applies one claimed note: it sets the legal hold of every
// version of the note's object to what the holds say, then reads them
// again; if they changed meanwhile (a note applied at the same time may
// have written the other answer), the note is due again at once. Applied,
// the note is removed, or, while a hold with an until keeps the upload,
// made due when that hold ends. Failed, it is retried with backoff. S3 and
// the database get half the lease, so that a failure is written while the
// note is still claimed.
func (m *Mirror) Attempt(ctx context.Context, note *ent.LegalHoldSync) error {
	attemptCtx, cancel := context.WithTimeout(ctx, lease/2)
	err := m.attempt(attemptCtx, note)
	cancel()
	if err != nil {
		m.record("retry")
		wait := backoff.Delay(note.Attempts, time.Second, m.opts.MaxBackoff)
		m.logger.WarnContext(ctx, "objectlock: mirroring a legal hold failed; retrying", "upload_id", note.UploadID,
			"attempts", note.Attempts, "retry_in", wait, "error", err)
		m.retry(ctx, note, time.Now().Add(wait), err)
	}
	return err
}

// retry makes a failed note due again at at. Until that is written the
// note stays claimed, for the rest of its lease (up to a minute): so a
// write that fails is made again, with backoff, while the lease lasts, and
// only then is the note left for its lease to end, with a wake-up then. A
// write past the lease could undo another worker's claim. Ending ctx (the
// mirror stopping) stops the writes, not the one under way.
func (m *Mirror) retry(ctx context.Context, note *ent.LegalHoldSync, at time.Time, cause error) {
	leaseEnd := note.NextAttemptAt // a claimed note is due when its lease ends
	writeCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), leaseEnd)
	defer cancel()
	for failures := 1; ; failures++ {
		err := m.putOff(writeCtx, m.client.LegalHoldSync.UpdateOneID(note.ID).SetLastError(cause.Error()), at)
		if err == nil || ent.IsNotFound(err) {
			return
		}
		pause := backoff.Delay(failures, time.Second, m.opts.MaxBackoff)
		m.logger.ErrorContext(ctx, "objectlock: reschedule a note", "upload_id", note.UploadID, "retry_in", pause, "error", err)
		if time.Now().Add(pause).After(leaseEnd) {
			m.wakeAt(leaseEnd)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// putOff writes update with the note due at at, then wakes the mirror at
// that instant. Both come in that order and from one instant: a wake-up
// set before the write, or for an instant read off the clock apart from
// the one written, can come while the note is still claimed or just before
// it is due; its claim then finds nothing, and the note waits for the poll
// (a minute). CI lost a retry so on a loaded machine, whose pause between
// two readings of the clock outlasted the timer's lateness.
func (m *Mirror) putOff(ctx context.Context, update *ent.LegalHoldSyncUpdateOne, at time.Time) error {
	if err := update.SetNextAttemptAt(at).Exec(ctx); err != nil {
		return err
	}
	m.wakeAt(at)
	return nil
}

func (m *Mirror) attempt(ctx context.Context, note *ent.LegalHoldSync) error {
	lockable, err := m.Lockable(ctx, note.Bucket)
	if err != nil {
		return err
	}
	if !lockable {
		m.record("unlocked")
		return m.client.LegalHoldSync.DeleteOneID(note.ID).Exec(ctx)
	}
	now := time.Now()
	until, err := m.heldUntil(ctx, note, now)
	if err != nil {
		return fmt.Errorf("read holds: %w", err)
	}
	on := until.After(now)
	if err := m.store.SetLegalHold(ctx, note.Bucket, note.ObjectKey, on); err != nil {
		return err
	}
	after, err := m.heldUntil(ctx, note, time.Now())
	if err != nil {
		return fmt.Errorf("read holds: %w", err)
	}
	switch {
	case after.After(time.Now()) != on:
		return m.client.LegalHoldSync.UpdateOneID(note.ID).SetNextAttemptAt(time.Now()).Exec(ctx)
	case on && after.Before(forever):
		m.record("on")
		return m.putOff(ctx, m.client.LegalHoldSync.UpdateOneID(note.ID).SetAttempts(0).SetLastError(""), after)
	}
	m.record(map[bool]string{true: "on", false: "off"}[on])
	return m.client.LegalHoldSync.DeleteOneID(note.ID).Exec(ctx)
}

func (m *Mirror) record(outcome string) {
	if m.opts.Metrics != nil {
		m.opts.Metrics.LegalHoldSync(outcome)
	}
}
