package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/objectstore"
)

// DeletedMessage is the success message of a delete, shared by GraphQL and REST.
func DeletedMessage(uploadID string) string {
	return fmt.Sprintf("Upload %s deleted successfully", uploadID)
}

// deleteUpload is the deleteUpload mutation: the one place that decides who
// may delete an upload and how.
//
// The record's deletion and the note to purge its object commit together;
// only then is the object removed, inline but bounded by a timeout. If S3 is
// down or slow, the caller still gets success (the record is gone) and the
// purger finishes the job later. Whatever crashes when, no object is left
// that neither a record nor a pending purge knows about, and no record
// outlives its object.
func (r *Resolver) deleteUpload(ctx context.Context, uploadID string) (payload *model.DeleteUploadPayload, err error) {
	defer func() { r.options.Metrics.Delete(deleteOutcome(err)) }()
	v, err := requireViewer(ctx)
	if errors.Is(err, ErrUnauthorized) {
		return nil, err
	}
	if err != nil {
		r.logger.ErrorContext(ctx, "authenticate delete", "error", err)
		return nil, ErrDeleteFailed
	}
	uploadID = strings.TrimSpace(uploadID)
	if uploadID == "" {
		return nil, ErrMissingUploadID
	}
	// A malformed id cannot name an upload; answer exactly as for a missing one.
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrUploadNotFound
	}

	purge, err := r.deleteRecord(ctx, v.UserID, uploadID)
	if err != nil {
		return nil, err
	}
	if purge != nil {
		_ = r.purger.AttemptInline(ctx, purge) // on failure the purger retries; Attempt logs
	}
	return &model.DeleteUploadPayload{DeletedUploadID: uploadID, Message: DeletedMessage(uploadID)}, nil
}

// pendingPurgeMargin is how long after an upload's deadline its purge waits.
const pendingPurgeMargin = time.Minute

// deleteOutcome names a delete's result for the metrics.
func deleteOutcome(err error) string {
	var public *PublicError
	switch {
	case err == nil:
		return "deleted"
	case errors.As(err, &public):
		return strings.ToLower(public.Code)
	default:
		return "error"
	}
}

// deleteRecord deletes the caller's upload and, in the same transaction,
// schedules its object's purge. It returns the scheduled purge, or nil when
// the upload never stored an object.
func (r *Resolver) deleteRecord(ctx context.Context, ownerID, uploadID string) (*ent.ObjectPurge, error) {
	tx, err := r.client.Tx(ctx)
	if err != nil {
		r.logger.ErrorContext(ctx, "begin delete", "upload_id", uploadID, "error", err)
		return nil, ErrDeleteFailed
	}
	purge, err := r.deleteRecordTx(ctx, tx, ownerID, uploadID)
	if err != nil {
		_ = tx.Rollback()
		if errors.Is(err, ErrUploadNotFound) {
			return nil, err
		}
		r.logger.ErrorContext(ctx, "delete upload record", "upload_id", uploadID, "error", err)
		return nil, ErrDeleteFailed
	}
	if err := tx.Commit(); err != nil {
		r.logger.ErrorContext(ctx, "commit delete", "upload_id", uploadID, "error", err)
		return nil, ErrDeleteFailed
	}
	return purge, nil
}

func (r *Resolver) deleteRecordTx(ctx context.Context, tx *ent.Tx, ownerID, uploadID string) (*ent.ObjectPurge, error) {
	// Another user's upload is indistinguishable from a missing one.
	mine := upload.And(upload.ID(uploadID), upload.OwnerID(ownerID))
	u, err := tx.Upload.Query().Where(mine).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrUploadNotFound
	}
	if err != nil {
		return nil, err
	}
	// Of concurrent deletes, only the one whose DELETE removes the row wins;
	// the others see zero rows and answer 404.
	n, err := tx.Upload.Delete().Where(mine).Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrUploadNotFound
	}
	if u.ObjectKey == "" {
		return nil, nil // a failed upload that never stored anything
	}
	if u.Status == upload.StatusPENDING {
		// Its bytes may still be on their way: a purge now could run before
		// the object exists, leaving it unknown once it arrives. The purge
		// waits until storing must have stopped (plus a margin for a request
		// S3 is still finishing), and then also aborts any multipart upload
		// of the key, recorded or not (a crash may have come between
		// starting it and recording its id).
		if u.MultipartUploadID == "" {
			u.MultipartUploadID = objectstore.AllMultipartUploads
		}
		_, err := r.purger.Schedule(ctx, tx, u, u.CreatedAt.Add(r.options.UploadTimeout+pendingPurgeMargin))
		return nil, err
	}
	return r.purger.Schedule(ctx, tx, u, time.Time{})
}
