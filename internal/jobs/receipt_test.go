package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/deletionreceipt"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/testenv"
)

// jobReceipt waits for the job's receipt, checks it with the public keys
// the service serves, and checks that its digest is that of the receipts
// of exactly uploadIDs, recomputed here from each upload's own receipt.
// The receipt is due within (the last purges' ends are written in the
// background).
func jobReceipt(t *testing.T, env *testenv.Env, jobID string, uploadIDs []string, within time.Duration) *receipt.JobClaims {
	t.Helper()
	ctx := context.Background()
	var job *ent.DeletionJob
	env.Eventually(within, "the job's receipt", func() bool {
		job = env.Client().DeletionJob.GetX(ctx, jobID)
		return job.Receipt != ""
	})
	jwks := env.Do("GET", receipt.JWKSPath, nil, nil)
	_, payload, err := receipt.VerifyJob(job.Receipt, []byte(jwks.Body))
	if err != nil {
		t.Fatalf("the job's receipt does not verify with the served keys: %v", err)
	}
	claims, err := receipt.DecodeJobClaims(payload)
	if err != nil {
		t.Fatal(err)
	}
	// One byte changed anywhere fails it.
	for _, at := range []int{10, len(job.Receipt) / 2, len(job.Receipt) - 3} {
		tampered := []byte(job.Receipt)
		tampered[at] ^= 1
		if _, _, err := receipt.VerifyJob(string(tampered), []byte(jwks.Body)); err == nil {
			t.Errorf("the receipt with byte %d changed still verifies", at)
		}
	}
	stored := env.Client().DeletionReceipt.Query().Where(deletionreceipt.UploadIDIn(uploadIDs...)).AllX(ctx)
	if len(stored) != len(uploadIDs) {
		t.Fatalf("%d of the %d uploads have their own receipt", len(stored), len(uploadIDs))
	}
	slices.SortFunc(stored, func(a, b *ent.DeletionReceipt) int { return strings.Compare(a.UploadID, b.UploadID) })
	var list strings.Builder
	for _, r := range stored {
		sum := sha256.Sum256([]byte(r.Jws))
		list.WriteString(hex.EncodeToString(sum[:]) + "\n")
	}
	digest := sha256.Sum256([]byte(list.String()))
	if claims.ReceiptsDigest != hex.EncodeToString(digest[:]) || claims.ReceiptCount != len(uploadIDs) {
		t.Errorf("receipt: digest %s of %d receipts; want %x of %d", claims.ReceiptsDigest, claims.ReceiptCount, digest, len(uploadIDs))
	}
	if claims.JobID != jobID || claims.CompletedAt.IsZero() || claims.StartedAt == nil || claims.FinishedAt == nil {
		t.Errorf("receipt claims: %+v", claims)
	}
	return claims
}

// TestJobReceiptFilter: a FILTER job with held uploads ends with one
// receipt whose counts are the job's (the held ones counted, not listed)
// and whose digest covers every upload it deleted, with or without an
// object.
func TestJobReceiptFilter(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	userID, _ := env.NewUser()
	ids := seed(t, env, userID, 1500, 150)
	held := []string{ids[3], ids[700]} // one with an object, one without
	for _, id := range held {
		if _, err := holds.Place(ctx, env.Client(), holds.Spec{UploadID: id, Reason: "litigation", Actor: audit.CLI}, nil); err != nil {
			t.Fatal(err)
		}
	}
	job := start(t, env, userID, nil)
	done := wait(t, env, job.ID, 2*time.Minute)
	if done.Status != deletionjob.StatusSUCCEEDED || done.HeldCount != 2 {
		t.Fatalf("finished: %s, held %d", done.Status, done.HeldCount)
	}
	deleted := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(held, id) })
	claims := jobReceipt(t, env, job.ID, deleted, time.Minute)
	if claims.Kind != "FILTER" || claims.Status != "SUCCEEDED" || claims.OwnerID != userID || claims.MatchedCount != 1500 ||
		claims.DeletedCount != 1498 || claims.HeldCount != 2 || claims.FailedCount != 0 {
		t.Errorf("receipt counts: %+v", claims)
	}
}

// TestJobReceiptUserErase: `users delete`'s job ends with one receipt of
// the user's erasure, issued once the last object is gone, though the
// user is gone by then.
func TestJobReceiptUserErase(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	ctx := context.Background()
	userID, _ := env.NewUser()
	ids := seed(t, env, userID, 1200, 40)
	job, err := env.App.Jobs.StartUserErase(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if done := runToEnd(t, env, job.ID); done.Status != deletionjob.StatusSUCCEEDED {
		t.Fatalf("finished: %s (%s)", done.Status, done.Error)
	}
	claims := jobReceipt(t, env, job.ID, ids, time.Minute)
	if claims.Kind != "USER_ERASE" || claims.OwnerID != userID || claims.MatchedCount != 1200 || claims.DeletedCount != 1200 || claims.HeldCount != 0 {
		t.Errorf("receipt counts: %+v", claims)
	}
}

// TestJobReceiptWaitsForTheTrash: a caller's job with a restore window
// gets its receipt only once its uploads have left the trash; one
// restored leaves the job's set and does not hold the receipt back, and
// one that never stored an object gets its own receipt when it leaves the
// trash.
func TestJobReceiptWaitsForTheTrash(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.DeleteRetention = time.Hour }})
	ctx := context.Background()
	userID, key := env.NewUser()
	restored := env.MustUpload(key, "restored.txt", []byte("back"))
	purged := env.MustUpload(key, "purged.txt", []byte("gone"))
	objectless := seed(t, env, userID, 1, 0)[0]
	res := env.GraphQL(key, `mutation { startDeletionJob(where: {}) { id } }`, nil)
	var started struct {
		StartDeletionJob struct{ ID string }
	}
	if err := res.Decode(&started); err != nil || len(res.Errors) > 0 {
		t.Fatalf("start: %v %v", err, res.Errors)
	}
	jobID := started.StartDeletionJob.ID
	done := wait(t, env, jobID, time.Minute)
	if done.Status != deletionjob.StatusSUCCEEDED || done.DeletedCount != 3 {
		t.Fatalf("finished: %s, deleted %d", done.Status, done.DeletedCount)
	}
	if n := env.Client().DeletedUpload.Query().Where(deletedupload.DeletionJobID(jobID)).CountX(ctx); n != 3 {
		t.Fatalf("%d of the job's 3 uploads in the trash", n)
	}
	if got := env.Client().DeletionJob.GetX(ctx, jobID); got.Receipt != "" {
		t.Fatal("the job's receipt was issued while its uploads were in the trash")
	}
	if res := env.GraphQL(key, `mutation($id: ID!) { restoreUpload(id: $id) { id } }`, map[string]any{"id": restored.ID}); len(res.Errors) > 0 {
		t.Fatalf("restore: %v", res.Errors)
	}
	if res := env.GraphQL(key, `mutation($id: ID!) { purgeUpload(id: $id) { purgedUploadId } }`, map[string]any{"id": purged.ID}); len(res.Errors) > 0 {
		t.Fatalf("purge: %v", res.Errors)
	}
	env.Eventually(time.Minute, "the purged upload's receipt", func() bool {
		_, err := receipt.Of(ctx, env.Client(), userID, purged.ID)
		return err == nil
	})
	if got := env.Client().DeletionJob.GetX(ctx, jobID); got.Receipt != "" {
		t.Fatal("the job's receipt was issued while an upload without an object was still in the trash")
	}
	// The one without an object waits out its window, then the janitor
	// ends it.
	env.Client().DeletedUpload.UpdateOneID(objectless).SetPurgeAt(time.Now().Add(-time.Second)).ExecX(ctx)
	if _, _, err := env.App.Janitor.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Of(ctx, env.Client(), userID, objectless); err != nil {
		t.Fatalf("the upload without an object that left the trash has no receipt: %v", err)
	}
	// The janitor's pass ended the last: the receipt is there now.
	claims := jobReceipt(t, env, jobID, []string{purged.ID, objectless}, 0)
	if claims.DeletedCount != 3 || claims.ReceiptCount != 2 {
		t.Errorf("receipt counts: %+v", claims)
	}
	// GraphQL serves it, and its upload receipts page by page; their
	// hashes, in order, make its digest.
	digest := receipt.NewDigest()
	var after any
	for range 3 {
		res := env.GraphQL(key, `query($id: ID!, $after: ID) { node(id: $id) { ... on DeletionJob { receipt {
			jws receiptsDigest receiptCount uploadReceipts(first: 1, after: $after) { items { uploadId hash } endCursor hasNextPage } } } } }`,
			map[string]any{"id": jobID, "after": after})
		var got struct {
			Node struct {
				Receipt struct {
					Jws, ReceiptsDigest string
					ReceiptCount        int
					UploadReceipts      struct {
						Items       []struct{ UploadID, Hash string }
						EndCursor   *string
						HasNextPage bool
					}
				}
			}
		}
		if err := res.Decode(&got); err != nil || len(res.Errors) > 0 {
			t.Fatalf("DeletionJob.receipt: %v %v", err, res.Errors)
		}
		r := got.Node.Receipt
		if r.ReceiptsDigest != claims.ReceiptsDigest || r.ReceiptCount != 2 || r.Jws == "" {
			t.Fatalf("DeletionJob.receipt: %+v, want the signed claims %+v", r, claims)
		}
		for _, item := range r.UploadReceipts.Items {
			digest.Add(item.Hash)
		}
		if !r.UploadReceipts.HasNextPage {
			break
		}
		after = *r.UploadReceipts.EndCursor
	}
	if digest.Count() != 2 || digest.Sum() != claims.ReceiptsDigest {
		t.Errorf("the pages' %d hashes digest to %s, want %s", digest.Count(), digest.Sum(), claims.ReceiptsDigest)
	}
}
