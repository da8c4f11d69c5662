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

// jobReceipt is DeletionJob.receipt: the job's receipt, decoded; nil until
// it is issued.
func (r *Resolver) jobReceipt(ctx context.Context, job *ent.DeletionJob) (*model.DeletionJobReceipt, error) {
	if _, err := requireScope(ctx, scope.UploadsRead); err != nil {
		return nil, err
	}
	if job.Receipt == "" {
		return nil, nil
	}
	return JobReceiptModel(job.Receipt)
}

// JobReceiptModel decodes a stored job receipt for GraphQL (and the CLI's
// --json).
func JobReceiptModel(jws string) (*model.DeletionJobReceipt, error) {
	kid, c, err := receipt.DecodeJob(jws)
	if err != nil {
		return nil, err
	}
	return &model.DeletionJobReceipt{
		Jws: jws, KeyID: kid, JobID: c.JobID, OwnerID: c.OwnerID, Kind: c.Kind, Status: c.Status,
		MatchedCount: c.MatchedCount, DeletedCount: c.DeletedCount, HeldCount: c.HeldCount, FailedCount: c.FailedCount,
		ReceiptCount: c.ReceiptCount, ReceiptsDigest: c.ReceiptsDigest,
		StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, CompletedAt: c.CompletedAt, IssuedAt: time.Unix(c.IssuedAt, 0).UTC(),
	}, nil
}

// jobUploadReceipts is DeletionJobReceipt.uploadReceipts: a page of the
// job's upload receipts' hashes, in upload id order.
func (r *Resolver) jobUploadReceipts(ctx context.Context, job *model.DeletionJobReceipt, first *int, after *string) (*model.JobUploadReceiptPage, error) {
	v, err := requireScope(ctx, scope.UploadsRead)
	if err != nil {
		return nil, err
	}
	if v.UserID != job.OwnerID {
		return nil, ErrJobNotFound
	}
	limit, err := boundedFirst(first, nil)
	if err != nil {
		return nil, err
	}
	var from string
	if after != nil {
		from = *after
	}
	// One more than the page says whether another follows.
	hashes, err := receipt.JobHashes(ctx, r.client, job.JobID, from, *limit+1)
	if err != nil {
		return nil, err
	}
	page := &model.JobUploadReceiptPage{HasNextPage: len(hashes) > *limit, Items: []*model.JobUploadReceipt{}}
	for _, h := range hashes[:min(len(hashes), *limit)] {
		page.Items = append(page.Items, &model.JobUploadReceipt{UploadID: h.UploadID, Hash: h.Hash})
	}
	if n := len(page.Items); n > 0 {
		page.EndCursor = &page.Items[n-1].UploadID
	}
	return page, nil
}
