package graph

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// Limits of the batch deletes.
const (
	// MaxDeleteIDs is how many ids one deleteUploads takes (S3's limit of
	// keys per DeleteObjects request): one transaction in the database; the
	// objects then go to S3 in a few DeleteObjects requests, as
	// objectstore.DeleteKeys splits them (smaller requests side by side).
	MaxDeleteIDs = 1000
	// MaxDeleteWhere is how many uploads one deleteUploadsWhere deletes,
	// in transactions of MaxDeleteIDs.
	MaxDeleteWhere = 10_000
)

// ErrTooManyIDs is a deleteUploads call with more than MaxDeleteIDs ids.
var ErrTooManyIDs = &PublicError{
	Code:    CodeBadUserInput,
	Message: fmt.Sprintf("deleteUploads takes at most %d ids; send the rest in another call", MaxDeleteIDs),
}

// deleteUploads is the deleteUploads mutation: one set, one transaction.
func (r *Resolver) deleteUploads(ctx context.Context, uploadIDs []string) (payload *model.DeleteUploadsPayload, err error) {
	defer func() { r.options.Metrics.Delete(deleteOutcome(err)) }()
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	if len(uploadIDs) > MaxDeleteIDs {
		return nil, ErrTooManyIDs
	}
	// Each id once, as given and in that order; malformed ones cannot name
	// an upload.
	var asked, wellFormed []string
	seen := map[string]bool{}
	for _, id := range uploadIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		asked = append(asked, id)
		if ids.Valid(ids.UploadPrefix, id) {
			wellFormed = append(wellFormed, id)
		}
	}
	// What an earlier run of this request deleted is deleted by it.
	deleted := map[string]bool{}
	for _, id := range deletedBefore(ctx) {
		deleted[id] = true
	}
	wellFormed = slices.DeleteFunc(wellFormed, func(id string) bool { return deleted[id] })
	held := map[string]bool{}
	if len(wellFormed) > 0 {
		now, heldNow, err := r.DeleteOwnedHeld(ctx, audit.Caller(ctx), v.UserID, wellFormed)
		if err != nil {
			return nil, err
		}
		for _, id := range now {
			deleted[id] = true
		}
		for _, id := range heldNow {
			held[id] = true
		}
	}
	payload = &model.DeleteUploadsPayload{DeletedUploadIds: []string{}, NotFoundIds: []string{}, HeldIds: []string{}}
	for _, id := range asked {
		switch {
		case deleted[id]:
			payload.DeletedUploadIds = append(payload.DeletedUploadIds, id)
		case held[id]:
			payload.HeldIds = append(payload.HeldIds, id)
		default:
			payload.NotFoundIds = append(payload.NotFoundIds, id)
		}
	}
	return payload, nil
}

// deleteUploadsWhere is the deleteUploadsWhere mutation: the caller's
// uploads matching where, a set of up to MaxDeleteIDs at a time.
func (r *Resolver) deleteUploadsWhere(ctx context.Context, where ent.UploadWhereInput, dryRun bool) (payload *model.DeleteUploadsWherePayload, err error) {
	defer func() { r.options.Metrics.Delete(deleteOutcome(err)) }()
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	// Whatever the filter says, only the caller's uploads.
	matching := r.client.Upload.Query().Where(upload.OwnerID(v.UserID))
	filter, err := where.P()
	switch {
	// where: {} is every upload; an empty filter inside one ({not: {}})
	// is refused, not taken for every upload.
	case err == ent.ErrEmptyUploadWhereInput: //nolint:errorlint // the unwrapped error only
	case err != nil:
		return nil, &PublicError{Code: CodeBadUserInput, Message: err.Error()}
	default:
		matching.Where(filter)
	}
	matched, err := matching.Clone().Count(ctx)
	if err != nil {
		return nil, r.deleteFailed(ctx, err)
	}
	payload = &model.DeleteUploadsWherePayload{MatchedCount: matched}
	if payload.HeldCount, err = matching.Clone().Where(holds.Held(time.Now())).Count(ctx); err != nil {
		return nil, r.deleteFailed(ctx, err)
	}
	if dryRun {
		return payload, nil
	}
	// What a hold keeps is left out of the batches (the delete core would
	// skip it anyway; picking it again would stall them).
	matching.Where(holds.NotHeld(time.Now()))
	// An earlier run of this request that deleted some before its
	// instance died is resumed: those count as deleted, and matched.
	before := len(deletedBefore(ctx))
	payload.MatchedCount += before
	payload.DeletedCount = before
	if before < MaxDeleteWhere { // a limit of 0 would be none
		deletedNow, err := r.DeleteOwnedBatches(ctx, audit.Caller(ctx), v.UserID, MaxDeleteWhere-before,
			func(ctx context.Context, atMost int) ([]string, error) {
				return matching.Clone().Order(upload.ByID()).Limit(atMost).IDs(ctx)
			})
		if err != nil {
			return nil, err
		}
		payload.DeletedCount += deletedNow
	}
	if payload.HasMore, err = matching.Clone().Exist(ctx); err != nil {
		return nil, r.deleteFailed(ctx, err)
	}
	return payload, nil
}

// deleter returns the caller of a change that needs the scope need,
// ErrUnauthorized, Forbidden, or (when the credentials could not be checked)
// ErrDeleteFailed.
func (r *Resolver) deleter(ctx context.Context, need scope.Scope) (viewer.Viewer, error) {
	v, err := requireScope(ctx, need)
	var public *PublicError
	if err != nil && !errors.As(err, &public) {
		r.logger.ErrorContext(ctx, "authenticate delete", "error", err)
		return v, ErrDeleteFailed
	}
	return v, err
}
