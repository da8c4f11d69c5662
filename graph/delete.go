package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
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

	// Read first, outside any transaction: a 404 (a guess, a repeat, a
	// double click) costs one indexed read and never takes the database's
	// write lock, which on SQLite every writer queues for.
	mine := upload.And(upload.ID(uploadID), upload.OwnerID(v.UserID))
	seen, err := r.client.Upload.Query().Where(mine).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrUploadNotFound
	}
	var job *ent.ObjectPurge
	if err == nil {
		err = database.WithTx(ctx, r.client, func(tx *ent.Tx) (err error) {
			job, err = r.deleteRecordTx(ctx, tx, seen)
			return err
		})
	}
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

// deleteRecordTx deletes the upload seen (read just before, outside tx) and
// schedules the purge of its object. It returns the purge to attempt now,
// if any, or ErrUploadNotFound when the upload is gone.
func (r *Resolver) deleteRecordTx(ctx context.Context, tx *ent.Tx, seen *ent.Upload) (*ent.ObjectPurge, error) {
	// The purge is planned from the record as it is when deleted: the DELETE
	// matches only the record as seen, and if that changed since (its upload
	// finished or failed), it is read again, now under the write lock.
	n, err := tx.Upload.Delete().Where(unchanged(seen)).Exec(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		seen, err = tx.Upload.Query().Where(upload.ID(seen.ID), upload.OwnerID(seen.OwnerID)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, ErrUploadNotFound
		}
		if err != nil {
			return nil, err
		}
		if n, err = tx.Upload.Delete().Where(unchanged(seen)).Exec(ctx); err != nil {
			return nil, err
		}
	}
	// Of concurrent deletes, only the one whose DELETE removes the row wins;
	// the others see zero rows and answer 404.
	if n == 0 {
		return nil, ErrUploadNotFound
	}
	return r.purger.ScheduleFor(ctx, tx, seen)
}

// unchanged matches the upload u only while every field its purge depends
// on is as in u.
func unchanged(u *ent.Upload) predicate.Upload {
	return upload.And(
		upload.ID(u.ID), upload.OwnerID(u.OwnerID), // another user's upload is never matched
		upload.StatusEQ(u.Status),
		upload.Bucket(u.Bucket),
		upload.ObjectKey(u.ObjectKey),
		upload.MultipartUploadID(u.MultipartUploadID),
	)
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
