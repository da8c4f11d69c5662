// Package janitor settles the uploads nobody will finish or keep:
//
//   - a PENDING upload older than the upload timeout (plus the purger's
//     margin) was left by an uploader that died; it becomes FAILED, and
//     whatever it stored (its object, its multipart uploads, recorded or not)
//     is purged at once;
//   - a FAILED upload older than the retention is deleted, through the same
//     code as a user's delete.
//
// Run runs it on one instance, the elected leader (queue.Queue.Leads). It
// stays safe should two instances run it at once (for a moment after a
// leader's connection failed): each stuck upload is claimed by one
// conditional UPDATE, and each expired one is deleted by whichever DELETE
// removes its row.
package janitor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/receipt"
)

// Deleter deletes uploads of one owner (graph's delete core).
type Deleter interface {
	DeleteOwned(ctx context.Context, actor audit.Actor, ownerID string, uploadIDs []string) ([]string, error)
}

// Options are the janitor's settings, all required.
type Options struct {
	Interval      time.Duration // how often Run looks
	UploadTimeout time.Duration // longest time storing one upload may take
	// FailedRetention is how long FAILED uploads are kept; 0 keeps them.
	FailedRetention time.Duration
	// AuditRetention is how long audit events, and webhook deliveries that
	// were answered, are kept; 0 keeps them.
	AuditRetention time.Duration
	// JobRetention is how long finished deletion jobs are kept; 0 keeps
	// them.
	JobRetention time.Duration
	// Idempotency keeps the answers of keyed requests; the janitor prunes
	// those past its retention. Nil: none.
	Idempotency *idempotency.Store
	Metrics     *metrics.Metrics
}

// Janitor settles stuck and expired uploads.
type Janitor struct {
	client  *ent.Client
	purger  *purge.Purger
	deleter Deleter
	logger  *slog.Logger
	opts    Options
}

// batchSize is how many uploads one transaction settles.
const batchSize = 1000

// New returns a Janitor.
func New(client *ent.Client, purger *purge.Purger, deleter Deleter, logger *slog.Logger, opts Options) *Janitor {
	return &Janitor{client: client, purger: purger, deleter: deleter, logger: logger, opts: opts}
}

// Run settles uploads every Interval, while leads says this instance is
// the one that runs periodic work, until ctx is cancelled.
func (j *Janitor) Run(ctx context.Context, leads func(context.Context) bool) {
	ticker := time.NewTicker(j.opts.Interval)
	defer ticker.Stop()
	for {
		if leads(ctx) { // else another instance settles them
			if _, _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
				j.logger.ErrorContext(ctx, "janitor pass failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunOnce settles what is due now: it returns how many stuck uploads it
// marked FAILED and how many FAILED uploads it deleted.
func (j *Janitor) RunOnce(ctx context.Context) (failed, expired int, err error) {
	now := time.Now()
	if failed, err = j.failStuck(ctx, now); err != nil {
		return failed, 0, err
	}
	if j.opts.FailedRetention > 0 {
		if expired, err = j.expireFailed(ctx, now); err != nil {
			return failed, expired, err
		}
	}
	if err = j.emptyTrash(ctx, now); err != nil {
		return failed, expired, err
	}
	if j.opts.AuditRetention > 0 {
		// Answered webhook deliveries are history too, kept as long.
		if _, err := j.client.WebhookDelivery.Delete().
			Where(webhookdelivery.StatusNEQ(webhookdelivery.StatusPENDING), webhookdelivery.CreatedAtLT(now.Add(-j.opts.AuditRetention))).
			Exec(ctx); err != nil {
			return failed, expired, fmt.Errorf("prune webhook deliveries: %w", err)
		}
		pruned, err := audit.Prune(ctx, j.client, now.Add(-j.opts.AuditRetention))
		if pruned > 0 {
			j.opts.Metrics.Janitor("audit_pruned", pruned)
			j.logger.InfoContext(ctx, "audit events pruned", "events", pruned, "retention", j.opts.AuditRetention.String())
		}
		if err != nil {
			return failed, expired, fmt.Errorf("prune audit events: %w", err)
		}
		// A deletion receipt is kept as long as the events it anchors to.
		receipts, err := receipt.Prune(ctx, j.client, now.Add(-j.opts.AuditRetention))
		if receipts > 0 {
			j.logger.InfoContext(ctx, "deletion receipts pruned", "receipts", receipts, "retention", j.opts.AuditRetention.String())
		}
		if err != nil {
			return failed, expired, fmt.Errorf("prune deletion receipts: %w", err)
		}
	}
	if j.opts.JobRetention > 0 {
		pruned, err := jobs.Prune(ctx, j.client, now.Add(-j.opts.JobRetention))
		if pruned > 0 {
			j.opts.Metrics.Janitor("jobs_pruned", pruned)
			j.logger.InfoContext(ctx, "deletion jobs pruned", "jobs", pruned, "retention", j.opts.JobRetention.String())
		}
		if err != nil {
			return failed, expired, err
		}
	}
	if keys := j.opts.Idempotency; keys != nil && keys.Retention() > 0 {
		if _, err := keys.Prune(ctx, now.Add(-keys.Retention())); err != nil {
			return failed, expired, fmt.Errorf("prune idempotency keys: %w", err)
		}
	}
	return failed, expired, nil
}

// emptyTrash ends the uploads in the trash that never stored an object
// once their window closed: there is no purge to end them, so it records
// them gone for good, each with its "purged" event and its deletion
// receipt (purge.EndObjectless), a batch at a time. (An entry with an
// object ends with its purge.)
func (j *Janitor) emptyTrash(ctx context.Context, now time.Time) error {
	total := 0
	for {
		expired, err := j.client.DeletedUpload.Query().
			Where(deletedupload.PurgeAtLTE(now), deletedupload.ObjectKey(""),
				// A hold keeps it in the trash, restorable, until released.
				holds.TrashNotHeld(now)).
			Limit(batchSize).
			IDs(ctx)
		if err != nil {
			return fmt.Errorf("empty the trash: %w", err)
		}
		var n int
		if len(expired) > 0 {
			err = database.WithTx(ctx, j.client, func(tx *ent.Tx) (err error) {
				n, err = j.purger.EndObjectless(ctx, tx, now, expired...)
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("empty the trash: %w", err)
		}
		total += n
		// Fewer than asked for, or none ended (restored meanwhile): done.
		if len(expired) < batchSize || n == 0 {
			break
		}
	}
	if total > 0 {
		j.logger.InfoContext(ctx, "trash emptied", "uploads", total)
	}
	return nil
}

// failStuck marks FAILED the PENDING uploads that must have stopped storing
// by now, and purges what they stored.
func (j *Janitor) failStuck(ctx context.Context, now time.Time) (int, error) {
	deadline := now.Add(-j.opts.UploadTimeout - purge.PendingMargin)
	total := 0
	for {
		stuck, err := j.client.Upload.Query().
			Where(upload.StatusEQ(upload.StatusPENDING), upload.CreatedAtLT(deadline), holds.NotHeld(now)).
			Limit(batchSize).
			All(ctx)
		if err != nil || len(stuck) == 0 {
			return total, err
		}
		var claimed []*ent.Upload
		var purges []*ent.ObjectPurge
		err = database.WithTx(ctx, j.client, func(tx *ent.Tx) (err error) {
			claimed = claimed[:0]
			for _, u := range stuck {
				// Conditional: another janitor, the uploader or a delete
				// may have settled it since it was read.
				n, err := tx.Upload.Update().
					Where(upload.ID(u.ID), upload.StatusEQ(upload.StatusPENDING), holds.NotHeld(now)).
					SetStatus(upload.StatusFAILED).
					SetBucket("").SetObjectKey("").SetMultipartUploadID("").
					Save(ctx)
				if err != nil {
					return err
				}
				if n == 1 {
					claimed = append(claimed, u)
				}
			}
			if purges, err = j.purger.ScheduleStopped(ctx, tx, claimed...); err != nil {
				return err
			}
			expired := make([]audit.Subject, len(claimed))
			for i, u := range claimed {
				expired[i] = audit.Of(u)
				expired[i].Status = upload.StatusFAILED.String()
			}
			_, err = audit.Record(ctx, tx, audit.Janitor, audit.Expired, expired...)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("mark stuck uploads failed: %w", err)
		}
		if len(claimed) == 0 {
			return total, nil // settled by someone else meanwhile
		}
		j.purger.AttemptInline(ctx, purges...) // what fails, the purger retries
		total += len(claimed)
		j.opts.Metrics.Janitor("failed", len(claimed))
		j.logger.InfoContext(ctx, "stuck uploads marked failed", "uploads", len(claimed), "objects_purged", len(purges))
	}
}

// expireFailed deletes the FAILED uploads that became FAILED longer than
// the retention ago.
func (j *Janitor) expireFailed(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-j.opts.FailedRetention)
	total := 0
	for {
		var rows []struct {
			ID      string `json:"id"`
			OwnerID string `json:"owner_id"`
		}
		err := j.client.Upload.Query().
			Where(upload.StatusEQ(upload.StatusFAILED), upload.UpdatedAtLT(cutoff), holds.NotHeld(now)).
			Limit(batchSize).
			Select(upload.FieldID, upload.FieldOwnerID).
			Scan(ctx, &rows)
		if err != nil || len(rows) == 0 {
			return total, err
		}
		byOwner := map[string][]string{}
		for _, r := range rows {
			byOwner[r.OwnerID] = append(byOwner[r.OwnerID], r.ID)
		}
		deletedNow := 0
		for owner, ids := range byOwner {
			deleted, err := j.deleter.DeleteOwned(ctx, audit.Janitor, owner, ids)
			if err != nil {
				return total, fmt.Errorf("delete expired failed uploads: %w", err)
			}
			deletedNow += len(deleted)
		}
		if deletedNow == 0 {
			return total, nil // deleted by someone else meanwhile
		}
		total += deletedNow
		j.opts.Metrics.Janitor("expired", deletedNow)
		j.logger.InfoContext(ctx, "failed uploads expired", "uploads", deletedNow, "retention", j.opts.FailedRetention.String())
	}
}
