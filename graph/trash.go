package graph

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/scope"
)

// ErrNotInTrash is a restore or purge of an upload that cannot be restored:
// never deleted, someone else's, or its window closed. The cases look the
// same.
var ErrNotInTrash = &PublicError{Code: CodeNotFound, Message: "Upload not found in the trash"}

// restoreUpload brings a deleted upload back, with its object, while its
// restore window is open. It races the purger fairly: the restore takes
// back the upload's unclaimed purge in its transaction, and a purger
// claims it only if still unclaimed, so either the upload is back with its
// object, or the purge goes on and the restore is ErrNotInTrash — never a
// record without its object.
func (r *Resolver) restoreUpload(ctx context.Context, uploadID string) (*ent.Upload, error) {
	v, err := r.deleter(ctx, scope.UploadsWrite)
	if err != nil {
		return nil, err
	}
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrNotInTrash
	}
	// Restored by an earlier run of this request (the same
	// Idempotency-Key) whose instance died before answering.
	var before string
	if idempotency.Recorded(ctx, &before) && before == uploadID {
		restored, err := r.client.Upload.Query().Where(upload.ID(uploadID), upload.OwnerID(v.UserID)).Only(ctx)
		if err != nil {
			return nil, r.publicOr(ctx, "restore upload", cmp.Or(ent.MaskNotFound(err), error(ErrNotInTrash)))
		}
		return restored, nil
	}
	var restored *ent.Upload
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
		now := time.Now()
		d, err := tx.DeletedUpload.Query().
			Where(deletedupload.ID(uploadID), deletedupload.OwnerID(v.UserID), holds.InTrash(now)).
			Only(ctx)
		if ent.IsNotFound(err) {
			return ErrNotInTrash
		}
		if err != nil {
			return err
		}
		if r.beforeTakeBack != nil {
			r.beforeTakeBack()
		}
		if d.ObjectKey != "" {
			if back, err := r.purger.Unschedule(ctx, tx, uploadID); err != nil || !back {
				return cmp.Or(err, error(ErrNotInTrash))
			}
		}
		// The entry itself decides between two restores of one upload.
		if n, err := tx.DeletedUpload.Delete().Where(deletedupload.ID(uploadID)).Exec(ctx); err != nil || n == 0 {
			return cmp.Or(err, error(ErrNotInTrash))
		}
		// Back, it leaves the set of the job that deleted it, whose
		// receipt then no longer waits for it.
		if d.DeletionJobID != "" && r.options.Receipts != nil {
			if err := r.options.Receipts.Settle(ctx, tx, d.DeletionJobID, -1); err != nil {
				return err
			}
		}
		restored, err = tx.Upload.Create().
			SetID(d.ID).
			SetOwnerID(d.OwnerID).
			SetFilename(d.Filename).
			SetContentType(d.ContentType).
			SetSize(d.Size).
			SetStatus(upload.Status(d.Status)).
			SetBucket(d.Bucket).
			SetObjectKey(d.ObjectKey).
			SetMultipartUploadID(d.MultipartUploadID).
			SetCreatedAt(d.CreatedAt).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("restore upload: %w", err)
		}
		// Held in the trash, it is held back; the holds are read after
		// the entry's delete, which waited for any hold placed on it.
		if err := holds.Refresh(ctx, tx, d.OwnerID, d.ID); err != nil {
			return err
		}
		if err := idempotency.Record(ctx, tx, uploadID); err != nil {
			return err
		}
		return change.Record(ctx, tx, audit.Caller(ctx), audit.Restored, change.MayHave, audit.Of(restored))
	})
	if err != nil {
		return nil, r.publicOr(ctx, "restore upload", err)
	}
	return restored, nil
}

// purgeUpload removes one of the caller's uploads from the trash now, with
// its object, instead of at the end of its window.
func (r *Resolver) purgeUpload(ctx context.Context, uploadID string) (*model.PurgeUploadPayload, error) {
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrNotInTrash
	}
	// Purged by an earlier run of this request (the same Idempotency-Key)
	// whose instance died before answering.
	var before string
	if idempotency.Recorded(ctx, &before) && before == uploadID {
		return &model.PurgeUploadPayload{PurgedUploadID: uploadID}, nil
	}
	purged, err := r.purgeTrash(ctx, v.UserID, uploadID)
	if err != nil {
		return nil, r.publicOr(ctx, "purge upload", err)
	}
	if purged == 0 {
		held, err := r.client.DeletedUpload.Query().
			Where(deletedupload.ID(uploadID), deletedupload.OwnerID(v.UserID), deletedupload.HeldUntilGT(time.Now().UTC())).
			Exist(ctx)
		if err != nil {
			return nil, r.publicOr(ctx, "purge upload", err)
		}
		if held {
			return nil, ErrUploadHeld
		}
		return nil, ErrNotInTrash
	}
	return &model.PurgeUploadPayload{PurgedUploadID: uploadID}, nil
}

// PurgeTrash purges at once everything the owner has in the trash (an
// account erasure does), and returns how many uploads.
func (r *Resolver) PurgeTrash(ctx context.Context, ownerID string) (int, error) {
	return r.purgeTrash(ctx, ownerID, "")
}

// purgeTrash closes the restore window of the owner's uploads in the trash
// (of one, when uploadID is given) and purges their objects: inline (see
// purge.InlineContext), and by the purger for what that leaves. What a
// hold keeps stays: each entry's window is closed by one conditional
// UPDATE of its row, the row a hold placed meanwhile writes too (see
// internal/holds), before its purge is claimed.
func (r *Resolver) purgeTrash(ctx context.Context, ownerID, uploadID string) (int, error) {
	total := 0
	for {
		var purges []*ent.ObjectPurge
		var closed int
		err := database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
			now := time.Now()
			query := tx.DeletedUpload.Query().
				Where(deletedupload.OwnerID(ownerID), deletedupload.PurgeAtGT(now), holds.TrashNotHeld(now)).
				Limit(MaxDeleteIDs)
			if uploadID != "" {
				query.Where(deletedupload.ID(uploadID))
			}
			trashed, err := query.All(ctx)
			if err != nil || len(trashed) == 0 {
				return err
			}
			if trashed, err = closeUnheld(ctx, tx, ownerID, trashed, now); err != nil || len(trashed) == 0 {
				return err
			}
			var objectless []string
			for _, d := range trashed {
				if d.ObjectKey == "" {
					objectless = append(objectless, d.ID)
					closed++
					continue
				}
				job, err := r.purger.Expedite(ctx, tx, d.ID)
				if err != nil {
					return err
				}
				if job != nil { // else a purger claimed it: under way already
					purges = append(purges, job)
					closed++
				}
			}
			// The purge's end removes an entry with an object; one without
			// has nothing to wait for: it is gone for good now.
			if _, err := r.purger.EndObjectless(ctx, tx, now, objectless...); err != nil {
				return err
			}
			if uploadID != "" && closed > 0 {
				return idempotency.Record(ctx, tx, uploadID)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		r.purger.AttemptInline(ctx, purges...)
		total += closed
		if closed == 0 || uploadID != "" {
			return total, nil
		}
	}
}

// closeUnheld closes, in tx, the window of those of the trashed entries no
// hold keeps, and returns them.
func closeUnheld(ctx context.Context, tx *ent.Tx, ownerID string, trashed []*ent.DeletedUpload, now time.Time) ([]*ent.DeletedUpload, error) {
	utc := now.UTC()
	query, args := sql.Dialect(dialect.Postgres).Update(deletedupload.Table).
		Set(deletedupload.FieldPurgeAt, now).
		Where(sql.And(
			sql.EQ(deletedupload.FieldOwnerID, ownerID),
			sql.In(deletedupload.FieldID, anySlice(idsOf(trashed))...),
			sql.Or(sql.IsNull(deletedupload.FieldHeldUntil), sql.LTE(deletedupload.FieldHeldUntil, utc)),
		)).
		Query()
	rows, err := tx.QueryContext(ctx, query+" RETURNING "+deletedupload.FieldID, args...)
	if err != nil {
		return nil, fmt.Errorf("close trash windows: %w", err)
	}
	defer rows.Close()
	closed := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("close trash windows: %w", err)
		}
		closed[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("close trash windows: %w", err)
	}
	return slices.DeleteFunc(trashed, func(d *ent.DeletedUpload) bool { return !closed[d.ID] }), nil
}

func idsOf(trashed []*ent.DeletedUpload) []string {
	out := make([]string, len(trashed))
	for i, d := range trashed {
		out[i] = d.ID
	}
	return out
}

// deletedUploads is viewer.deletedUploads: the caller's restorable
// uploads, most recently deleted first.
func (r *Resolver) deletedUploads(ctx context.Context, obj *ent.User, after *entgql.Cursor[string], first *int, before *entgql.Cursor[string], last *int) (*ent.DeletedUploadConnection, error) {
	if _, err := requireScope(ctx, scope.UploadsRead); err != nil {
		return nil, err
	}
	first, err := boundedFirst(first, last)
	if err != nil {
		return nil, err
	}
	return r.client.DeletedUpload.Query().
		Where(deletedupload.OwnerID(obj.ID), holds.InTrash(time.Now())).
		Paginate(ctx, after, first, before, last, ent.WithDeletedUploadOrder(&ent.DeletedUploadOrder{
			Direction: entgql.OrderDirectionDesc,
			Field:     ent.DeletedUploadOrderFieldDeletedAt,
		}))
}

// publicOr returns err when it is meant for the caller; anything else is
// logged and hidden behind ErrInternal.
func (r *Resolver) publicOr(ctx context.Context, what string, err error) error {
	var public *PublicError
	if errors.As(err, &public) {
		return public
	}
	r.logger.ErrorContext(ctx, what, "error", err)
	return ErrInternal
}
