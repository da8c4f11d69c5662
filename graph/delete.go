package graph

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"go.opentelemetry.io/otel/attribute"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/scope"
)

// deleteUpload is the deleteUpload mutation: a delete of a set of one (see
// DeleteOwned), answered as the REST contract's single delete.
func (r *Resolver) deleteUpload(ctx context.Context, uploadID string) (payload *model.DeleteUploadPayload, err error) {
	defer func() { r.options.Metrics.Delete(deleteOutcome(err)) }()
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	uploadID = ids.Trim(uploadID)
	if uploadID == "" {
		return nil, ErrMissingUploadID
	}
	// A malformed id cannot name an upload; answer exactly as for a missing one.
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrUploadNotFound
	}
	deleted := deletedBefore(ctx)
	if !slices.Contains(deleted, uploadID) {
		var held []string
		if deleted, held, err = r.DeleteOwnedHeld(ctx, audit.Caller(ctx), v.UserID, []string{uploadID}); err != nil {
			return nil, err
		}
		if len(held) > 0 {
			return nil, ErrUploadHeld
		}
	}
	if len(deleted) == 0 {
		return nil, ErrUploadNotFound
	}
	return &model.DeleteUploadPayload{DeletedUploadID: uploadID, Message: DeletedMessage(uploadID)}, nil
}

// DeleteOwned is the one place where uploads are deleted: those of
// uploadIDs that exist and belong to ownerID are deleted in one database
// transaction, each with the note to purge its object; then the objects
// are removed inline, within PURGE_INLINE_TIMEOUT (purge.AttemptInline). If S3 is down
// or slow, the records are gone all the same and the purger finishes the
// job later. Whatever crashes when, no object is left that neither a record
// nor a pending purge knows about, and no record outlives its object.
//
// The audit trail records actor as the one who deleted them; a caller's
// delete keeps them in the trash for DELETE_RETENTION, the service's own
// (actor.System) does not.
//
// It returns the ids it deleted, in the order given; ids that do not exist
// or are someone else's are left out, indistinguishably. A database failure
// deletes nothing and is ErrDeleteFailed.
//
// What a legal hold keeps is never deleted (internal/holds): it is left
// out too; DeleteOwnedHeld says which.
func (r *Resolver) DeleteOwned(ctx context.Context, actor audit.Actor, ownerID string, uploadIDs []string) ([]string, error) {
	deleted, _, err := r.DeleteOwnedHeld(ctx, actor, ownerID, uploadIDs)
	return deleted, err
}

// DeleteOwnedHeld is DeleteOwned that also returns which of uploadIDs were
// left because a hold keeps them.
func (r *Resolver) DeleteOwnedHeld(ctx context.Context, actor audit.Actor, ownerID string, uploadIDs []string) (deletedIDs, heldIDs []string, err error) {
	deleted, held, purges, err := r.deleteRecords(ctx, actor, ownerID, uploadIDs, nil)
	if err != nil {
		return nil, nil, err
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
	return inOrder, held, nil
}

// DeleteOwnedBatches deletes, as DeleteOwned does, the batches of ownerID's
// uploads that next returns, one transaction each, until next returns none,
// a batch deletes nothing (deleted meanwhile by someone else) or limit
// uploads are deleted (0: no limit); next is told how many more may go.
// The objects of earlier batches are removed while the next batch's
// transaction runs, up to purgesInFlight batches at once, so an erasure
// goes at the pace of the slower of the database and S3, not their sum.
// It returns how many uploads it deleted once every batch's inline purge
// is over; on an error, the batches before it stay deleted.
func (r *Resolver) DeleteOwnedBatches(ctx context.Context, actor audit.Actor, ownerID string, limit int,
	next func(ctx context.Context, atMost int) ([]string, error),
) (int, error) {
	return r.DeleteOwnedBatchesTx(ctx, actor, ownerID, limit, next, nil)
}

// DeleteOwnedBatchesTx is DeleteOwnedBatches with inBatch (nil: none) run
// inside the transaction of each batch, after its records are deleted,
// with the ids of those it deleted (none when others deleted them first):
// what inBatch writes commits with the batch or not at all. Its error rolls
// the batch back, ends the run and is returned as it is, unlogged: its
// caller's to word. A deletion job counts its progress there, fenced by
// its lease.
func (r *Resolver) DeleteOwnedBatchesTx(ctx context.Context, actor audit.Actor, ownerID string, limit int,
	next func(ctx context.Context, atMost int) ([]string, error),
	inBatch func(ctx context.Context, tx *ent.Tx, deleted []string) error,
) (int, error) {
	deleted := 0
	inFlight := make(chan struct{}, purgesInFlight)
	var purging sync.WaitGroup
	defer purging.Wait()
	for limit == 0 || deleted < limit {
		atMost := MaxDeleteIDs
		if limit > 0 {
			atMost = min(atMost, limit-deleted)
		}
		n, err := r.deleteBatch(ctx, actor, ownerID, atMost, next, inBatch, func(ctx context.Context, purges []*ent.ObjectPurge) {
			inFlight <- struct{}{}
			purging.Go(func() {
				defer func() { <-inFlight }()
				r.purger.AttemptInline(ctx, purges...)
			})
		})
		if err != nil || n == 0 {
			return deleted, err
		}
		deleted += n
	}
	return deleted, nil
}

// deleteBatch is one batch of DeleteOwnedBatchesTx, in a span of its own
// when traced: it takes the next at most atMost ids, deletes them, and
// hands their purges to purge. It returns how many it deleted.
func (r *Resolver) deleteBatch(ctx context.Context, actor audit.Actor, ownerID string, atMost int,
	next func(ctx context.Context, atMost int) ([]string, error),
	inBatch func(ctx context.Context, tx *ent.Tx, deleted []string) error,
	purge func(ctx context.Context, purges []*ent.ObjectPurge),
) (int, error) {
	ctx, span := r.options.Tracer.Start(ctx, "delete batch")
	defer span.End()
	batch, err := next(ctx, atMost)
	if err != nil {
		return 0, r.deleteFailed(ctx, err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	uploads, _, purges, err := r.deleteRecords(ctx, actor, ownerID, batch, inBatch)
	if err != nil || len(uploads) == 0 {
		return 0, err
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("delete.count", len(uploads)))
	}
	purge(ctx, purges)
	return len(uploads), nil
}

// purgesInFlight is how many batches' objects DeleteOwnedBatches removes at
// once: an S3 server serves two DeleteObjects requests side by side faster
// than one after the other (versitygw on two cores: about 1.4 times).
const purgesInFlight = 2

// deleteRecords deletes, in one transaction, those of uploadIDs that
// exist and belong to ownerID, each with the note to purge its object, its
// trash entry if it can be restored, and its audit event (queued for the
// owner's webhook endpoints if there are any). It returns the uploads as
// they were deleted, the ids of those a hold kept, and the purges, not yet
// attempted. inBatch, if not nil, runs last in the transaction.
func (r *Resolver) deleteRecords(ctx context.Context, actor audit.Actor, ownerID string, uploadIDs []string,
	inBatch func(ctx context.Context, tx *ent.Tx, deleted []string) error,
) ([]*ent.Upload, []string, []*ent.ObjectPurge, error) {
	// Read first, outside any transaction: a 404 (a guess, a repeat, a
	// double click) costs one indexed read and never takes the database's
	// write lock, which on SQLite every writer queues for.
	present, err := r.ownedAmong(ctx, ownerID, uploadIDs)
	if err != nil || len(present) == 0 {
		return nil, nil, nil, r.deleteFailed(ctx, err)
	}
	if r.afterRead != nil {
		r.afterRead(ctx)
	}
	// A user's delete keeps the objects for the restore window, if there is
	// one; the janitor's and an account erasure purge at once.
	now, keepUntil := time.Now(), time.Time{}
	if r.options.DeleteRetention > 0 && !actor.System() {
		keepUntil = now.Add(r.options.DeleteRetention)
	}
	var deleted []*ent.Upload
	var held []string
	var purges []*ent.ObjectPurge
	var inBatchErr error
	err = r.deletes.Do(ctx, func(ctx context.Context, tx *ent.Tx) (err error) {
		var endpoints change.Endpoints
		if deleted, endpoints, err = deleteReturning(ctx, tx, ownerID, present, now); err != nil {
			return err
		}
		if len(deleted) < len(present) {
			// Some were left: deleted meanwhile, or held. Only then is
			// it worth a read (the DELETE itself read the holds).
			if held, err = heldAmong(ctx, tx, ownerID, present, deleted, now); err != nil {
				return err
			}
		}
		if len(deleted) == 0 {
			// Deleted meanwhile by another request: this one did nothing,
			// so it records nothing (a keyed request's predicted answer
			// with it would be a 200 it never gave).
			return nil
		}
		// The purges carry the delete's request and its events' time to
		// their receipts (purge.Request).
		asked := purge.Request{Actor: actor, At: time.Now()}
		if purges, err = r.purger.ScheduleFor(ctx, tx, keepUntil, asked, deleted...); err != nil {
			return err
		}
		if err = toTrash(ctx, tx, now, keepUntil, deleted); err != nil {
			return err
		}
		if err = idempotency.Append(ctx, tx, idsOfUploads(deleted)...); err != nil {
			return err
		}
		receipts := r.noObjectReceipts(keepUntil, deleted)
		if err = change.RecordAt(ctx, tx, asked.At, actor, audit.Deleted, endpoints, receipts, subjectsOf(deleted)...); err != nil || inBatch == nil {
			return err
		}
		inBatchErr = inBatch(ctx, tx, idsOfUploads(deleted))
		return inBatchErr
	})
	if inBatchErr != nil && errors.Is(err, inBatchErr) {
		return nil, nil, nil, inBatchErr
	}
	if err != nil {
		return nil, nil, nil, r.deleteFailed(ctx, err)
	}
	return deleted, held, purges, nil
}

// heldAmong returns those of present, less deleted, that a hold keeps.
func heldAmong(ctx context.Context, tx *ent.Tx, ownerID string, present []string, deleted []*ent.Upload, now time.Time) ([]string, error) {
	gone := make(map[string]bool, len(deleted))
	for _, u := range deleted {
		gone[u.ID] = true
	}
	left := slices.DeleteFunc(slices.Clone(present), func(id string) bool { return gone[id] })
	held, err := tx.Upload.Query().
		Where(upload.OwnerID(ownerID), upload.IDIn(left...), holds.Held(now)).
		IDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("find held uploads: %w", err)
	}
	return held, nil
}

// deletedBefore returns the uploads that an earlier run of this request
// (the same Idempotency-Key) deleted before its instance died, unanswered:
// deleted by this request, as far as its caller can tell.
func deletedBefore(ctx context.Context) []string {
	var deleted []string
	idempotency.Recorded(ctx, &deleted)
	return deleted
}

func idsOfUploads(uploads []*ent.Upload) []string {
	out := make([]string, len(uploads))
	for i, u := range uploads {
		out[i] = u.ID
	}
	return out
}

// ownedAmong returns which of uploadIDs name uploads of ownerID. It runs on
// every delete, a 404 included, so it is a plain statement from Ent's SQL
// builder rather than a full Ent query (no interceptors, no entity).
func (r *Resolver) ownedAmong(ctx context.Context, ownerID string, uploadIDs []string) ([]string, error) {
	var rows *stdsql.Rows
	var err error
	if len(uploadIDs) == 1 { // a single delete, the hot path: the statement is built, and prepared, once
		rows, err = r.ownedOne.QueryContext(ctx, ownerID, uploadIDs[0])
	} else { // a statement per number of ids, not kept prepared
		query, args := ownedSelector(ownerID, anySlice(uploadIDs)...).Query()
		rows, err = r.client.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("find uploads: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find uploads: %w", err)
		}
		found = append(found, id)
	}
	return found, rows.Err()
}

func ownedSelector(ownerID string, uploadIDs ...any) *sql.Selector {
	// PostgreSQL's placeholders ($1) and quoting ("uploads") are also SQLite's.
	return sql.Dialect(dialect.Postgres).
		Select(upload.FieldID).
		From(sql.Table(upload.Table)).
		Where(sql.And(sql.EQ(upload.FieldOwnerID, ownerID), sql.In(upload.FieldID, uploadIDs...)))
}

// ownedOneQuery is ownedSelector's statement for a single id.
func ownedOneQuery() string {
	query, _ := ownedSelector("", "").Query()
	return query
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// deleteReturning deletes the owner's uploads among uploadIDs and returns
// them as they were when deleted: the purge is planned from that, not from
// an earlier read (an upload may have finished storing in between). Of
// concurrent deletes of one upload, only the one whose DELETE removes the
// row gets it back. The same statement says whether the owner has a live
// webhook endpoint, read in the transaction (so an endpoint added before
// it commits hears of the delete), which spares the outbox its own read
// for the owners who have none.
//
// A row that a hold keeps (its held_until, or its owner's, is after now)
// is not deleted: the check is in the DELETE itself, so that a hold placed
// while it waits for the row's lock is seen (see internal/holds), and it
// costs no round trip.
//
// Ent has no DELETE ... RETURNING, so the statement is built with its SQL
// builder. PostgreSQL's placeholders ($1) and quoting ("uploads") are also
// SQLite's, and both engines have RETURNING.
func deleteReturning(ctx context.Context, tx *ent.Tx, ownerID string, uploadIDs []string, now time.Time) ([]*ent.Upload, change.Endpoints, error) {
	query, args := deleteStatement(ownerID, uploadIDs, now)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, change.MayHave, fmt.Errorf("delete uploads: %w", err)
	}
	defer rows.Close()
	var deleted []*ent.Upload
	endpoints := change.NoneLive
	for rows.Next() {
		u := &ent.Upload{OwnerID: ownerID}
		var live bool
		if err := rows.Scan(&u.ID, &u.Status, &u.Bucket, &u.ObjectKey, &u.MultipartUploadID,
			&u.Filename, &u.ContentType, &u.Size, &u.CreatedAt, &live); err != nil {
			return nil, change.MayHave, fmt.Errorf("delete uploads: %w", err)
		}
		if live {
			endpoints = change.MayHave
		}
		deleted = append(deleted, u)
	}
	if err := rows.Err(); err != nil {
		return nil, change.MayHave, fmt.Errorf("delete uploads: %w", err)
	}
	return deleted, endpoints, nil
}

// deleteStatement is deleteReturning's statement and its arguments.
func deleteStatement(ownerID string, uploadIDs []string, now time.Time) (string, []any) {
	now = now.UTC() // held_until is written in UTC; SQLite compares the text
	if len(uploadIDs) == 1 {
		return deleteOne().bind(ownerID, uploadIDs[0], now)
	}
	return buildDelete(ownerID, uploadIDs, now)
}

// buildDelete builds deleteStatement's statement with Ent's SQL builder.
func buildDelete(ownerID string, uploadIDs []string, now time.Time) (string, []any) {
	b := sql.Dialect(dialect.Postgres)
	users := sql.Table(user.Table)
	ownerHeld := b.Select(users.C(user.FieldID)).From(users).
		Where(sql.And(sql.EQ(users.C(user.FieldID), ownerID), sql.GT(users.C(user.FieldHeldUntil), now)))
	query, queryArgs := b.Delete(upload.Table).
		Where(sql.And(
			sql.EQ(upload.FieldOwnerID, ownerID),
			sql.In(upload.FieldID, anySlice(uploadIDs)...),
			sql.Or(sql.IsNull(upload.FieldHeldUntil), sql.LTE(upload.FieldHeldUntil, now)),
			sql.NotExists(ownerHeld),
		)).
		Query()
	hasEndpoints := fmt.Sprintf("EXISTS (SELECT 1 FROM %s WHERE %s = $%d AND %s IS NULL)",
		webhookendpoint.Table, webhookendpoint.FieldOwnerID, len(queryArgs)+1, webhookendpoint.FieldDisabledAt)
	return query + " RETURNING " + strings.Join([]string{
		upload.FieldID, upload.FieldStatus, upload.FieldBucket, upload.FieldObjectKey, upload.FieldMultipartUploadID,
		upload.FieldFilename, upload.FieldContentType, upload.FieldSize, upload.FieldCreatedAt, hasEndpoints,
	}, ", "), append(queryArgs, ownerID)
}

// oneDelete is buildDelete's statement for a single id, the hot path's,
// built once (building it on every delete showed in the benchmark's
// profiles, issue 22), with the part each argument plays.
type oneDelete struct {
	query string
	parts []deleteArg
}

type deleteArg int

const (
	argOwner deleteArg = iota
	argUpload
	argNow
)

// deleteOne builds the statement once, with markers for its arguments to
// find which is which.
var deleteOne = sync.OnceValue(func() oneDelete {
	const owner, id = "\x00owner", "\x00upload"
	now := time.Unix(1, 0).UTC()
	query, args := buildDelete(owner, []string{id}, now)
	d := oneDelete{query: query, parts: make([]deleteArg, len(args))}
	for i, arg := range args {
		switch arg {
		case any(owner):
			d.parts[i] = argOwner
		case any(id):
			d.parts[i] = argUpload
		case any(now):
			d.parts[i] = argNow
		default:
			panic(fmt.Sprintf("delete statement: argument %d is %v, not one given", i, arg))
		}
	}
	return d
})

// bind returns the statement and its arguments for one upload.
func (d oneDelete) bind(ownerID, uploadID string, now time.Time) (string, []any) {
	args := make([]any, len(d.parts))
	for i, part := range d.parts {
		switch part {
		case argOwner:
			args[i] = ownerID
		case argUpload:
			args[i] = uploadID
		case argNow:
			args[i] = now
		}
	}
	return d.query, args
}

// toTrash writes, inside the delete's transaction, the trash entries of
// the deleted uploads that can be restored until keepUntil: none without a
// restore window, nor for an upload deleted while still storing (its
// storing was abandoned). What the "purged" event tells rides on the purge.
// An entry names the deletion job that deleted it, if one did
// (receipt.WithJob).
func toTrash(ctx context.Context, tx *ent.Tx, now, keepUntil time.Time, deleted []*ent.Upload) error {
	if keepUntil.IsZero() {
		return nil
	}
	jobID := receipt.JobOf(ctx)
	var creates []*ent.DeletedUploadCreate
	for _, u := range deleted {
		if u.Status == upload.StatusPENDING {
			continue
		}
		creates = append(creates, tx.DeletedUpload.Create().
			SetID(u.ID).
			SetOwnerID(u.OwnerID).
			SetFilename(u.Filename).
			SetContentType(u.ContentType).
			SetSize(u.Size).
			SetStatus(deletedupload.Status(u.Status)).
			SetBucket(u.Bucket).
			SetObjectKey(u.ObjectKey).
			SetMultipartUploadID(u.MultipartUploadID).
			SetDeletionJobID(jobID).
			SetCreatedAt(u.CreatedAt).
			SetDeletedAt(now).
			SetPurgeAt(keepUntil))
	}
	for part := range slices.Chunk(creates, trashChunk) {
		if err := tx.DeletedUpload.CreateBulk(part...).Exec(ctx); err != nil {
			return fmt.Errorf("move %d uploads to the trash: %w", len(creates), err)
		}
	}
	return nil
}

// trashChunk keeps one INSERT's parameters (12 a row) under PostgreSQL's
// limit of 65,535.
const trashChunk = 1000

func subjectsOf(uploads []*ent.Upload) []audit.Subject {
	subjects := make([]audit.Subject, len(uploads))
	for i, u := range uploads {
		subjects[i] = audit.Of(u)
	}
	return subjects
}

// deleteFailed logs a database failure of a delete and returns the public
// error for it; nil stays nil.
func (r *Resolver) deleteFailed(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if timedOut(ctx) {
		r.logger.WarnContext(ctx, "delete uploads stopped by the operation's deadline", "error", err)
		return ErrOperationTimeout
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
		if outcome, ok := outcomeOfCode[public.Code]; ok {
			return outcome
		}
		return strings.ToLower(public.Code)
	default:
		return "error"
	}
}

// outcomeOfCode is each error code's outcome, lowercased once rather than
// on every refused delete.
var outcomeOfCode = func() map[string]string {
	outcomes := map[string]string{}
	for _, code := range []string{CodeUnauthenticated, CodeBadUserInput, CodeNotFound, CodeInternal} {
		outcomes[code] = strings.ToLower(code)
	}
	return outcomes
}()

// DeletedMessage is the success message of a delete, shared by GraphQL and REST.
func DeletedMessage(uploadID string) string {
	return "Upload " + uploadID + " deleted successfully"
}
