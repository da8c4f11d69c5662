package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
)

// deleteUpload is the deleteUpload mutation: a delete of a set of one (see
// DeleteOwned), answered as the REST contract's single delete.
func (r *Resolver) deleteUpload(ctx context.Context, uploadID string) (payload *model.DeleteUploadPayload, err error) {
	defer func() { r.options.Metrics.Delete(deleteOutcome(err)) }()
	v, err := r.deleter(ctx)
	if err != nil {
		return nil, err
	}
	uploadID = strings.TrimSpace(uploadID)
	if uploadID == "" {
		return nil, ErrMissingUploadID
	}
	// A malformed id cannot name an upload; answer exactly as for a missing one.
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrUploadNotFound
	}
	deleted, err := r.DeleteOwned(ctx, v.UserID, []string{uploadID})
	if err != nil {
		return nil, err
	}
	if len(deleted) == 0 {
		return nil, ErrUploadNotFound
	}
	return &model.DeleteUploadPayload{DeletedUploadID: uploadID, Message: DeletedMessage(uploadID)}, nil
}

// DeleteOwned is the one place where uploads are deleted: those of
// uploadIDs that exist and belong to ownerID are deleted in one database
// transaction, each with the note to purge its object; then the objects
// are removed, inline but within the request's purge budget. If S3 is down
// or slow, the records are gone all the same and the purger finishes the
// job later. Whatever crashes when, no object is left that neither a record
// nor a pending purge knows about, and no record outlives its object.
//
// It returns the ids it deleted, in the order given; ids that do not exist
// or are someone else's are left out, indistinguishably. A database failure
// deletes nothing and is ErrDeleteFailed.
func (r *Resolver) DeleteOwned(ctx context.Context, ownerID string, uploadIDs []string) ([]string, error) {
	// Read first, outside any transaction: a 404 (a guess, a repeat, a
	// double click) costs one indexed read and never takes the database's
	// write lock, which on SQLite every writer queues for.
	present, err := r.client.Upload.Query().Where(upload.OwnerID(ownerID), upload.IDIn(uploadIDs...)).IDs(ctx)
	if err != nil || len(present) == 0 {
		return nil, r.deleteFailed(ctx, err)
	}
	var deleted []*ent.Upload
	var purges []*ent.ObjectPurge
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) (err error) {
		if deleted, err = deleteReturning(ctx, tx, ownerID, present); err != nil {
			return err
		}
		purges, err = r.purger.ScheduleFor(ctx, tx, deleted...)
		return err
	})
	if err != nil {
		return nil, r.deleteFailed(ctx, err)
	}
	r.purger.AttemptInline(ctx, purges...) // what fails is retried by the purger; it logs
	done := make(map[string]bool, len(deleted))
	for _, u := range deleted {
		done[u.ID] = true
	}
	inOrder := make([]string, 0, len(deleted))
	for _, id := range uploadIDs {
		if done[id] {
			inOrder = append(inOrder, id)
			delete(done, id) // an id asked for twice is deleted once
		}
	}
	return inOrder, nil
}

// deleteReturning deletes the owner's uploads among uploadIDs and returns
// them as they were when deleted: the purge is planned from that, not from
// an earlier read (an upload may have finished storing in between). Of
// concurrent deletes of one upload, only the one whose DELETE removes the
// row gets it back.
//
// Ent has no DELETE ... RETURNING, so the statement is built with its SQL
// builder. PostgreSQL's placeholders ($1) and quoting ("uploads") are also
// SQLite's, and both engines have RETURNING.
func deleteReturning(ctx context.Context, tx *ent.Tx, ownerID string, uploadIDs []string) ([]*ent.Upload, error) {
	args := make([]any, len(uploadIDs))
	for i, id := range uploadIDs {
		args[i] = id
	}
	query, queryArgs := sql.Dialect(dialect.Postgres).Delete(upload.Table).
		Where(sql.And(sql.EQ(upload.FieldOwnerID, ownerID), sql.In(upload.FieldID, args...))).
		Query()
	rows, err := tx.QueryContext(ctx, query+" RETURNING "+strings.Join([]string{
		upload.FieldID, upload.FieldStatus, upload.FieldBucket, upload.FieldObjectKey, upload.FieldMultipartUploadID,
	}, ", "), queryArgs...)
	if err != nil {
		return nil, fmt.Errorf("delete uploads: %w", err)
	}
	defer rows.Close()
	var deleted []*ent.Upload
	for rows.Next() {
		u := &ent.Upload{OwnerID: ownerID}
		if err := rows.Scan(&u.ID, &u.Status, &u.Bucket, &u.ObjectKey, &u.MultipartUploadID); err != nil {
			return nil, fmt.Errorf("delete uploads: %w", err)
		}
		deleted = append(deleted, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete uploads: %w", err)
	}
	return deleted, nil
}

// deleteFailed logs a database failure of a delete and returns the public
// error for it; nil stays nil.
func (r *Resolver) deleteFailed(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	r.logger.ErrorContext(ctx, "delete uploads", "error", err)
	return ErrDeleteFailed
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
