package graph

import (
	"context"
	"errors"
	"time"

	"entgo.io/contrib/entgql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/hold"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/scope"
)

// The errors of holds.
var (
	ErrHoldNotFound = &PublicError{Code: CodeNotFound, Message: "Hold not found"}
	ErrHoldReleased = &PublicError{Code: CodeBadUserInput, Message: "The hold was released already"}
)

// MaxUploadHolds bounds Upload.holds: a list, not a connection (its price
// in the cost model).
const MaxUploadHolds = 100

// placeHold is the placeHold mutation: a hold on one of the caller's
// uploads (internal/holds does the work).
func (r *Resolver) placeHold(ctx context.Context, uploadID, reason string, until *time.Time) (*ent.Hold, error) {
	v, err := requireScope(ctx, scope.HoldsManage)
	if err != nil {
		return nil, err
	}
	// Placed by an earlier run of this request (the same Idempotency-Key)
	// whose instance died before answering.
	var before string
	if idempotency.Recorded(ctx, &before) {
		return r.myHold(ctx, v.UserID, before)
	}
	spec := holds.Spec{UploadID: uploadID, Reason: reason, Actor: audit.Caller(ctx), OwnerID: v.UserID}
	if until != nil {
		spec.Until = *until
	}
	h, err := holds.Place(ctx, r.client, spec, func(ctx context.Context, tx *ent.Tx, h *ent.Hold) error {
		return idempotency.Record(ctx, tx, h.ID)
	})
	return h, r.holdError(ctx, "place hold", err, ErrUploadNotFound)
}

// releaseHold is the releaseHold mutation, for the caller's own holds.
func (r *Resolver) releaseHold(ctx context.Context, holdID string) (*ent.Hold, error) {
	v, err := requireScope(ctx, scope.HoldsManage)
	if err != nil {
		return nil, err
	}
	var before string
	if idempotency.Recorded(ctx, &before) && before == holdID {
		return r.myHold(ctx, v.UserID, holdID)
	}
	h, err := holds.Release(ctx, r.client, holdID, audit.Caller(ctx), v.UserID, func(ctx context.Context, tx *ent.Tx, h *ent.Hold) error {
		return idempotency.Record(ctx, tx, h.ID)
	})
	return h, r.holdError(ctx, "release hold", err, ErrHoldNotFound)
}

func (r *Resolver) myHold(ctx context.Context, ownerID, holdID string) (*ent.Hold, error) {
	h, err := r.client.Hold.Query().Where(hold.ID(holdID), hold.UserID(ownerID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrHoldNotFound
	}
	return h, r.holdError(ctx, "read hold", err, ErrHoldNotFound)
}

// holdError maps internal/holds' errors to public ones; notFound is the
// answer to holds.ErrNotFound.
func (r *Resolver) holdError(ctx context.Context, what string, err error, notFound *PublicError) error {
	var invalid *holds.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, holds.ErrNotFound):
		return notFound
	case errors.Is(err, holds.ErrReleased):
		return ErrHoldReleased
	case errors.As(err, &invalid):
		return &PublicError{Code: CodeBadUserInput, Message: invalid.Message}
	}
	return r.publicOr(ctx, what, err)
}

// viewerHolds is viewer.holds: the holds on the caller's account and
// uploads, oldest first.
func (r *Resolver) viewerHolds(ctx context.Context, obj *ent.User, after *entgql.Cursor[string], first *int, before *entgql.Cursor[string], last *int) (*ent.HoldConnection, error) {
	if _, err := requireScope(ctx, scope.UploadsRead); err != nil {
		return nil, err
	}
	first, err := boundedFirst(first, last)
	if err != nil {
		return nil, err
	}
	return r.client.Hold.Query().
		Where(hold.UserID(obj.ID)).
		Paginate(ctx, after, first, before, last, ent.WithHoldOrder(&ent.HoldOrder{
			Direction: entgql.OrderDirectionAsc,
			Field:     ent.HoldOrderFieldCreatedAt,
		}))
}

// uploadHolds is Upload.holds. Only the caller's uploads reach it.
func (r *Resolver) uploadHolds(ctx context.Context, obj *ent.Upload) ([]*ent.Hold, error) {
	if _, err := requireScope(ctx, scope.UploadsRead); err != nil {
		return nil, err
	}
	return r.client.Hold.Query().
		Where(hold.UserID(obj.OwnerID), hold.UploadID(obj.ID)).
		Order(ent.Asc(hold.FieldCreatedAt), ent.Asc(hold.FieldID)).
		Limit(MaxUploadHolds).
		All(ctx)
}
