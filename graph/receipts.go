package graph

import (
	"context"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/scope"
)

// deletionReceipt returns the receipt of one of the caller's uploads gone
// for good; NOT_FOUND, indistinguishably, for an upload not gone yet,
// never there, or someone else's.
func (r *Resolver) deletionReceipt(ctx context.Context, uploadID string) (*model.DeletionReceipt, error) {
	v, err := requireScope(ctx, scope.UploadsRead)
	if err != nil {
		return nil, err
	}
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, ErrUploadNotFound
	}
	stored, err := receipt.Of(ctx, r.client, v.UserID, uploadID)
	if ent.IsNotFound(err) {
		return nil, ErrUploadNotFound
	}
	if err != nil {
		return nil, err
	}
	return ReceiptModel(stored.Jws)
}

// ReceiptModel decodes a stored receipt for GraphQL (and the CLI's --json).
func ReceiptModel(jws string) (*model.DeletionReceipt, error) {
	kid, c, err := receipt.Decode(jws)
	if err != nil {
		return nil, err
	}
	return &model.DeletionReceipt{
		Jws: jws, KeyID: kid, UploadID: c.UploadID, OwnerID: c.OwnerID,
		Bucket: nonEmpty(c.Bucket), ObjectKey: nonEmpty(c.ObjectKey), VersionsRemoved: c.VersionsRemoved,
		DeleteRequestedAt: c.DeleteRequestedAt, DeleteRequestedBy: c.DeleteRequestedBy, DeleteRequestedVia: c.DeleteRequestedVia,
		ObjectGoneAt: c.ObjectGoneAt, IssuedAt: time.Unix(c.IssuedAt, 0).UTC(), AuditEventHash: nonEmpty(c.AuditEventHash),
	}, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// noObjectReceipts returns what issues, in a delete's transaction, the
// deletion receipts of the deleted uploads that never stored an object
// (failed before their first byte): no purge follows them, so their
// delete is the moment they are gone for good, unless the trash keeps them
// (keepUntil set). Nil when there are none, so that a delete of uploads
// with objects (nearly every one) does no work for receipts: theirs come
// from the purger, once the object is gone.
func (r *Resolver) noObjectReceipts(keepUntil time.Time, deleted []*ent.Upload) change.Receipts {
	if r.options.Receipts == nil || !keepUntil.IsZero() {
		return nil
	}
	var at []int
	for i, u := range deleted {
		if u.ObjectKey == "" {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return nil
	}
	return func(ctx context.Context, tx *ent.Tx, auditHashes []string) (map[string]string, error) {
		removals := make([]receipt.Removal, len(at))
		var hashes []string
		for n, i := range at {
			removals[n] = receipt.Removal{UploadID: deleted[i].ID, OwnerID: deleted[i].OwnerID, Queued: time.Now(), JobID: receipt.JobOf(ctx)}
			if i < len(auditHashes) {
				hashes = append(hashes, auditHashes[i])
			}
		}
		return r.options.Receipts.Issue(ctx, tx, removals, hashes)
	}
}
