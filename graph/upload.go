package graph

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/scope"
)

// uploadFile stores a file for the caller.
//
// The record, naming its bucket and key, is written PENDING before any byte
// reaches the bucket, so that a crash mid-upload leaves a record that knows
// the (possibly partial) object, never an orphan. Storing then either
// completes the record or marks it FAILED; a FAILED upload is returned, not
// an error, so that clients see it and can delete it.
func (r *Resolver) uploadFile(ctx context.Context, file graphql.Upload) (*ent.Upload, error) {
	v, err := requireScope(ctx, scope.UploadsWrite)
	if err != nil {
		return nil, err
	}
	if file.Size > r.options.MaxUploadSize {
		return nil, UploadTooLarge(r.options.MaxUploadSize)
	}
	// The same rule as for every input string (see gqllimit.Inputs): a NUL
	// names nothing, and PostgreSQL refuses it.
	if strings.ContainsRune(file.Filename, 0) || strings.ContainsRune(file.ContentType, 0) || !utf8.ValidString(file.ContentType) {
		return nil, ErrInvalidFileHeader
	}
	contentType := file.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// An earlier run of this request (the same Idempotency-Key) that
	// created the upload before its instance died made it: no second one.
	var created string
	if idempotency.Recorded(ctx, &created) {
		made, err := r.client.Upload.Query().Where(upload.ID(created), upload.OwnerID(v.UserID)).Only(ctx)
		if err != nil { // deleted since: a final answer, not an internal error every retry repeats
			return nil, r.publicOr(ctx, "replay upload", cmp.Or(ent.MaskNotFound(err), error(ErrUploadNotFound)))
		}
		if made.Status != upload.StatusPENDING {
			return made, nil
		}
		// Its instance died while storing it (this request holds the key
		// now): store the file again, under the same key, its earlier
		// multipart upload aborted.
		if made.MultipartUploadID != "" {
			if err := r.store.Abort(ctx, made.Bucket, made.ObjectKey, made.MultipartUploadID); err != nil {
				r.logger.WarnContext(ctx, "abort an earlier run's multipart upload", "upload_id", made.ID, "error", err)
			}
		}
		return r.storeFile(ctx, made, file, contentType)
	}
	uploadID := ids.NewUpload()
	key := objectKey(v.UserID, uploadID)
	var u *ent.Upload
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) (err error) {
		u, err = tx.Upload.Create().
			SetID(uploadID).
			SetOwnerID(v.UserID).
			SetFilename(cleanFilename(file.Filename)).
			SetContentType(contentType).
			SetSize(file.Size).
			SetStatus(upload.StatusPENDING).
			SetBucket(r.store.Bucket()).
			SetObjectKey(key).
			Save(ctx)
		if err != nil {
			return err
		}
		return idempotency.Record(ctx, tx, uploadID)
	})
	if err != nil {
		return nil, fmt.Errorf("create upload record: %w", err)
	}
	return r.storeFile(ctx, u.Unwrap(), file, contentType) // Unwrap: of the transaction, which is over
}

// storeFile stores the file of the PENDING upload u in its object, then
// settles the record: COMPLETED, or FAILED if storing failed.
func (r *Resolver) storeFile(ctx context.Context, u *ent.Upload, file graphql.Upload, contentType string) (*ent.Upload, error) {
	uploadID, key := u.ID, u.ObjectKey
	// Finish the record even if the caller hangs up half-way.
	ctx = context.WithoutCancel(ctx)
	// A multipart upload's id is recorded before its first part is sent, so
	// that a failure (or a crash) leaves it known and abortable.
	recordMultipart := func(ctx context.Context, multipartID string) error {
		u.MultipartUploadID = multipartID
		return r.client.Upload.UpdateOneID(uploadID).Where(stillPending).SetMultipartUploadID(multipartID).Exec(ctx)
	}
	// Bounded, so that a PENDING upload deleted meanwhile is known to have
	// stopped writing by the time its purge runs (see deleteRecordTx).
	putCtx, cancel := context.WithTimeout(ctx, r.options.UploadTimeout)
	defer cancel()
	// An operation may pass one file to several fields; each reads it whole.
	_, putErr := file.File.Seek(0, io.SeekStart)
	if putErr == nil {
		putErr = r.store.Put(putCtx, key, file.File, file.Size, contentType, recordMultipart)
	}
	if putErr != nil {
		r.logger.ErrorContext(ctx, "store upload", "upload_id", uploadID, "error", putErr)
		return r.markFailed(ctx, u)
	}
	completed, err := r.settle(ctx, u, func(update *ent.UploadUpdateOne) {
		update.SetStatus(upload.StatusCOMPLETED).SetMultipartUploadID("")
	}, r.options.LegalHolds.Stored)
	if ent.IsNotFound(err) {
		return nil, r.purgeAbandoned(ctx, u, upload.StatusCOMPLETED)
	}
	return completed, err
}

// settle writes an upload's final status and, in the same transaction, its
// "created" event: an upload is created, for its owner's trail and
// webhooks, once storing it has ended, COMPLETED or FAILED.
//
// also, if given, runs in that transaction too: the note of an upload whose
// owner is held, for the mirror of holds to the bucket (objectlock).
func (r *Resolver) settle(ctx context.Context, u *ent.Upload, set func(*ent.UploadUpdateOne),
	also ...func(context.Context, *ent.Tx, *ent.Upload) error,
) (settled *ent.Upload, err error) {
	err = database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
		update := tx.Upload.UpdateOne(u).Where(stillPending)
		set(update)
		if settled, err = update.Save(ctx); err != nil {
			return err
		}
		for _, f := range also {
			if err := f(ctx, tx, settled); err != nil {
				return err
			}
		}
		return change.Record(ctx, tx, audit.Caller(ctx), audit.Created, change.MayHave, audit.Of(settled))
	})
	return settled, err
}

// stillPending matches an upload that its uploader still owns: neither
// deleted, nor given up by the janitor as stuck. The uploader's every write
// is conditional on it, so that it never revives an upload someone else
// has settled; a write that finds nothing purges what it stored.
var stillPending = upload.StatusEQ(upload.StatusPENDING)

// purgeAbandoned handles an upload deleted (or given up as stuck) while it
// was being stored: its purge waits out the upload timeout, but storing has
// stopped now (ending in status), so whatever it left can go at once. It schedules that purge,
// durably, and tells the uploader the upload is gone.
func (r *Resolver) purgeAbandoned(ctx context.Context, u *ent.Upload, status upload.Status) error {
	stopped := *u
	stopped.Status = status
	var purges []*ent.ObjectPurge
	err := database.WithTx(ctx, r.client, func(tx *ent.Tx) (err error) {
		purges, err = r.purger.ScheduleFor(ctx, tx, time.Time{}, purge.Request{}, &stopped)
		return err
	})
	if err != nil {
		return err
	}
	r.purger.AttemptInline(ctx, purges...)
	return ErrUploadNotFound
}

// markFailed records a failed upload. If nothing of it can be left in the
// bucket (the object and any incomplete multipart upload are removed), the
// record forgets the key; otherwise it keeps the key and the multipart
// upload's id, so that deleting the upload purges whatever was stored.
func (r *Resolver) markFailed(ctx context.Context, u *ent.Upload) (*ent.Upload, error) {
	cleanCtx, cancel := r.purger.InlineContext(ctx)
	discarded := r.store.Once().Discard(cleanCtx, u.Bucket, u.ObjectKey, u.MultipartUploadID) == nil
	cancel()
	failed, err := r.settle(ctx, u, func(update *ent.UploadUpdateOne) {
		update.SetStatus(upload.StatusFAILED).SetMultipartUploadID(u.MultipartUploadID)
		if discarded {
			update.SetBucket("").SetObjectKey("").SetMultipartUploadID("")
		}
	})
	if ent.IsNotFound(err) {
		return nil, r.purgeAbandoned(ctx, u, upload.StatusFAILED)
	}
	if err != nil {
		return nil, fmt.Errorf("mark upload failed: %w", err)
	}
	return failed, nil
}

// UploadTooLarge is the error for a file over the limit of limit bytes.
func UploadTooLarge(limit int64) *PublicError {
	return &PublicError{
		Code:    CodeBadUserInput,
		Message: fmt.Sprintf("%s of %d bytes", ErrUploadTooLarge.Message, limit),
	}
}

// objectKey names the object of an upload. It contains no part of the
// user's filename, so no filename can collide, traverse or need escaping.
func objectKey(userID, uploadID string) string {
	return "uploads/" + userID + "/" + uploadID
}

// cleanFilename keeps the base name of what the client sent, as valid UTF-8
// of at most 255 bytes.
func cleanFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = "upload"
	}
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
