package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
)

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

	var job *ent.ObjectPurge
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) (err error) {
		job, err = r.deleteRecordTx(ctx, tx, v.UserID, uploadID)
		return err
	})
	switch {
	case errors.Is(err, ErrUploadNotFound):
		return nil, err
	case err != nil:
		r.logger.ErrorContext(ctx, "delete upload record", "upload_id", uploadID, "error", err)
		return nil, ErrDeleteFailed
	}
	if job != nil {
		_ = r.purger.AttemptInline(ctx, job) // on failure the purger retries; Attempt logs
	}
	return &model.DeleteUploadPayload{DeletedUploadID: uploadID, Message: DeletedMessage(uploadID)}, nil
}

// deleteRecordTx finds the caller's upload, deletes it and schedules the
// purge of its object. It returns the purge to attempt now, if any.
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
	return r.purger.ScheduleFor(ctx, tx, u)
}

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

// DeletedMessage is the success message of a delete, shared by GraphQL and REST.
func DeletedMessage(uploadID string) string {
	return "Upload " + uploadID + " deleted successfully"
}
