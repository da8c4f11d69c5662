package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/legalholdsync"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/objectstore"
)

// UnmirroredHold is an upload an active hold keeps whose object, on a
// bucket with Object Lock, has versions without the S3 legal hold: someone
// with the bucket's credentials could delete them.
type UnmirroredHold struct {
	UploadID string `json:"upload_id"`
	OwnerID  string `json:"owner_id"`
	Key      string `json:"key"`
	// VersionsUnlocked counts the object's versions whose legal hold is off.
	VersionsUnlocked int `json:"versions_unlocked"`
	// Pending says the service has a note to mirror it still queued: it is
	// on its way (or retrying; see its logs and uploads_legal_hold_syncs_total).
	Pending bool `json:"pending"`
	// Queued says this run queued a note for the running service to mirror it.
	Queued bool `json:"queued"`
}

// findUnmirroredHolds checks, where the bucket has Object Lock, that every
// version of each held upload's object (stored or in the trash) carries the
// legal hold. It asks S3 once per held object and version: holds are few.
func findUnmirroredHolds(ctx context.Context, client *ent.Client, store *objectstore.Store, bucket string, now time.Time, repair bool, report *Report) error {
	locked, err := store.ObjectLockEnabled(ctx, bucket)
	if err != nil {
		return err
	}
	report.ObjectLock = locked
	if !locked {
		return nil
	}
	type heldObject struct{ uploadID, ownerID, key string }
	var held []heldObject
	stored, err := client.Upload.Query().
		Where(upload.Bucket(bucket), upload.ObjectKeyNEQ(""), holds.Held(now)).
		Select(upload.FieldID, upload.FieldOwnerID, upload.FieldObjectKey).All(ctx)
	if err != nil {
		return fmt.Errorf("read held uploads: %w", err)
	}
	for _, u := range stored {
		held = append(held, heldObject{u.ID, u.OwnerID, u.ObjectKey})
	}
	trashed, err := client.DeletedUpload.Query().
		Where(deletedupload.Bucket(bucket), deletedupload.ObjectKeyNEQ(""), deletedupload.HeldUntilGT(now.UTC())).
		Select(deletedupload.FieldID, deletedupload.FieldOwnerID, deletedupload.FieldObjectKey).All(ctx)
	if err != nil {
		return fmt.Errorf("read held trash: %w", err)
	}
	for _, d := range trashed {
		held = append(held, heldObject{d.ID, d.OwnerID, d.ObjectKey})
	}
	for _, h := range held {
		_, off, err := store.LegalHolds(ctx, bucket, h.key)
		if err != nil {
			return err
		}
		if off == 0 {
			continue
		}
		finding := UnmirroredHold{UploadID: h.uploadID, OwnerID: h.ownerID, Key: h.key, VersionsUnlocked: off}
		if finding.Pending, err = client.LegalHoldSync.Query().Where(legalholdsync.UploadID(h.uploadID)).Exist(ctx); err != nil {
			return fmt.Errorf("read legal hold notes: %w", err)
		}
		if repair && !finding.Pending {
			err := client.LegalHoldSync.Create().
				SetUploadID(h.uploadID).SetOwnerID(h.ownerID).SetBucket(bucket).SetObjectKey(h.key).
				SetNextAttemptAt(time.Now()).Exec(ctx)
			if err != nil {
				return fmt.Errorf("queue a legal hold note: %w", err)
			}
			finding.Queued = true
		}
		report.UnmirroredHolds = append(report.UnmirroredHolds, finding)
	}
	return nil
}
