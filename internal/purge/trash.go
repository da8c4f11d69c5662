package purge

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/receipt"
)

// kept matches the purge of an upload in the trash: scheduled for later
// and never claimed (a claim counts an attempt). Once a purger has claimed
// it, the object may be going, so the upload can no longer come back.
func kept(uploadID string, now time.Time) []predicate.ObjectPurge {
	return []predicate.ObjectPurge{
		objectpurge.UploadID(uploadID),
		objectpurge.Attempts(0),
		objectpurge.NextAttemptAtGT(now),
	}
}

// Unschedule takes back, inside tx, the purge of an upload in the trash,
// so that it can be restored. It reports false when there is none to take
// back: the window closed, or a purger claimed it first. Whichever of a
// restore and a purger's claim commits first wins; the other finds nothing.
func (p *Purger) Unschedule(ctx context.Context, tx *ent.Tx, uploadID string) (bool, error) {
	n, err := tx.ObjectPurge.Delete().Where(kept(uploadID, time.Now())...).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("unschedule purge: %w", err)
	}
	return n > 0, nil
}

// Expedite claims, inside tx, the purge of an upload in the trash for an
// attempt right away (AttemptInline), as a purge after a delete is. It
// returns nil when there is none: the purge is already under way.
func (p *Purger) Expedite(ctx context.Context, tx *ent.Tx, uploadID string) (*ent.ObjectPurge, error) {
	now := time.Now()
	job, err := tx.ObjectPurge.Query().Where(kept(uploadID, now)...).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("expedite purge: %w", err)
	}
	n, err := tx.ObjectPurge.Update().
		Where(append(kept(uploadID, now), objectpurge.ID(job.ID))...).
		SetAttempts(1).
		SetNextAttemptAt(now.Add(2 * p.opts.InlineTimeout)).
		Save(ctx)
	if err != nil || n == 0 {
		return nil, err
	}
	job.Attempts, job.NextAttemptAt = 1, now.Add(2*p.opts.InlineTimeout)
	return job, nil
}

// EndObjectless records gone for good, inside tx, the uploads in the trash
// that never stored an object among uploadIDs whose window closed by now
// and that no hold keeps: no purge will end them, so their entries are
// deleted here, each with its "purged" event and its deletion receipt (as
// finish does for an upload whose object is removed). It returns how many.
func (p *Purger) EndObjectless(ctx context.Context, tx *ent.Tx, now time.Time, uploadIDs ...string) (int, error) {
	if len(uploadIDs) == 0 {
		return 0, nil
	}
	ids := make([]any, len(uploadIDs))
	for i, id := range uploadIDs {
		ids[i] = id
	}
	utc := now.UTC() // held_until is written in UTC; SQLite compares the text
	ended, err := emptyTrash(ctx, tx, sql.And(
		sql.In(deletedupload.FieldID, ids...),
		sql.EQ(deletedupload.FieldObjectKey, ""),
		sql.LTE(deletedupload.FieldPurgeAt, now),
		// A hold keeps it in the trash, restorable, until released.
		sql.Or(sql.IsNull(deletedupload.FieldHeldUntil), sql.LTE(deletedupload.FieldHeldUntil, utc)),
	))
	if err != nil || len(ended) == 0 {
		return 0, err
	}
	subjects := make([]audit.Subject, len(ended))
	for i, e := range ended {
		subjects[i] = e.Subject
	}
	var receipts change.Receipts
	if p.opts.Receipts != nil {
		receipts = func(ctx context.Context, tx *ent.Tx, auditHashes []string) (map[string]string, error) {
			removals := make([]receipt.Removal, len(ended))
			for i, e := range ended {
				removals[i] = receipt.Removal{UploadID: e.ID, OwnerID: e.OwnerID, Queued: e.DeletedAt, JobID: e.DeletionJobID}
			}
			return p.opts.Receipts.Issue(ctx, tx, removals, auditHashes)
		}
	}
	return len(ended), change.RecordWithReceipts(ctx, tx, audit.Purger, audit.Purged, change.MayHave, receipts, subjects...)
}
