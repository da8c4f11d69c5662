package purge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/purge"
)

// TestBatchKeepsWhatS3CouldNotDelete: of a batch, the purges whose keys S3
// reports deleted are done; each key S3 reports an error for keeps its
// purge, retried after the backoff of a failed attempt (not when its lease
// runs out), with S3's error recorded.
func TestBatchKeepsWhatS3CouldNotDelete(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	const n = 9
	keys := w.storeObjects(n)
	jobs := w.due(keys...)
	failing := map[string]bool{keys[4]: true, keys[7]: true}
	w.S3.FailKeys(func(key string) bool { return failing[key] })

	before := time.Now()
	attempted, purged, err := w.purger().RunOnce(context.Background())
	after := time.Now()
	if err != nil || attempted != n || purged != n-len(failing) {
		t.Fatalf("RunOnce = %d attempted, %d purged, %v; want %d and %d", attempted, purged, err, n, n-len(failing))
	}
	for i, job := range jobs {
		row := w.row(job.ID)
		if !failing[job.ObjectKey] {
			if row != nil {
				t.Errorf("purge %d is done but its row stays", i)
			}
			if w.ObjectExists(job.ObjectKey) {
				t.Errorf("object %d left in the bucket", i)
			}
			continue
		}
		if row == nil {
			t.Errorf("purge %d failed but its row is gone: the object would never be retried", i)
			continue
		}
		if row.Attempts != 1 || !strings.Contains(row.LastError, "InternalError") {
			t.Errorf("failed purge %d: attempts %d, last error %q", i, row.Attempts, row.LastError)
		}
		within(t, "failed purge's next attempt", row.NextAttemptAt, before.Add(purge.MinBackoff/2), after.Add(purge.MinBackoff))
	}

	w.S3.FailKeys(nil)
	w.Client().ObjectPurge.Update().SetNextAttemptAt(time.Now()).ExecX(context.Background())
	if _, purged, err := w.purger().RunOnce(context.Background()); err != nil || purged != len(failing) {
		t.Errorf("retry = %d purged, %v; want the %d failed ones", purged, err, len(failing))
	}
	if pending := w.pending(); pending != 0 {
		t.Errorf("%d purges pending after the retry", pending)
	}
}

// TestBatchOfMixedPurges: in one batch, plain objects go in one
// DeleteObjects request; a purge with a multipart upload to abort goes on
// its own: every multipart upload is aborted; purges of another bucket are
// done in that bucket.
func TestBatchOfMixedPurges(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	plain := w.storeObjects(3)
	multipartKey := w.storeObjects(1)[0] + "-multipart"
	recorded := w.startMultipart(multipartKey)
	unrecordedKey := "stopped-upload"
	w.startMultipart(unrecordedKey)
	otherBucket := w.Bucket + "-other"
	if _, err := w.Direct.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(otherBucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Direct.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(otherBucket), Key: aws.String("elsewhere"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}

	jobs := w.due(plain...)
	jobs = append(jobs, w.Client().ObjectPurge.Create().SetBucket(w.Bucket).SetObjectKey(multipartKey).SetUploadID("upl_multipart").
		SetMultipartUploadID(recorded).SetNextAttemptAt(time.Now()).SaveX(ctx))
	jobs = append(jobs, w.Client().ObjectPurge.Create().SetBucket(w.Bucket).SetObjectKey(unrecordedKey).SetUploadID("upl_stopped").
		SetAbortAllMultipart(true).SetNextAttemptAt(time.Now()).SaveX(ctx))
	jobs = append(jobs, w.queue(otherBucket, time.Now(), "elsewhere")...)
	traffic := w.watchS3()

	if purged := w.purger().AttemptBatch(ctx, jobs); purged != len(jobs) {
		t.Errorf("AttemptBatch = %d purged, want %d", purged, len(jobs))
	}
	for _, key := range plain {
		if w.ObjectExists(key) {
			t.Errorf("object %s left in the bucket", key)
		}
	}
	if _, batched := traffic.deleteObjects(); batched != len(plain)+1 {
		t.Errorf("%d keys went in DeleteObjects requests, want the %d plain ones (one per bucket)", batched, len(plain)+1)
	}
	if n := w.IncompleteMultipartUploads(); n != 0 {
		t.Errorf("%d multipart uploads left incomplete", n)
	}
	if _, err := w.Direct.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(otherBucket), Key: aws.String("elsewhere")}); err == nil {
		t.Error("the object in the other bucket is left")
	}
	if pending := w.pending(); pending != 0 {
		t.Errorf("%d purges pending, want all done", pending)
	}
}

// TestBatchFailureAfterAPurgeVanished: when one purge of a failed batch
// was finished meanwhile (by another purger), the others are still
// rescheduled with backoff, and the finished one stays finished.
func TestBatchFailureAfterAPurgeVanished(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	ctx := context.Background()
	claimedUntil := time.Now().Add(purge.Lease)
	jobs := w.queue(w.Bucket, claimedUntil, "vanished", "a", "b")
	w.Client().ObjectPurge.DeleteOne(jobs[0]).ExecX(ctx)
	w.S3.SetMode(faultproxy.Unavailable)

	before := time.Now()
	if purged := w.purger().AttemptBatch(ctx, jobs); purged != 0 {
		t.Fatalf("AttemptBatch = %d purged while S3 fails", purged)
	}
	after := time.Now()
	if row := w.row(jobs[0].ID); row != nil {
		t.Errorf("the finished purge came back: %+v", row)
	}
	for _, job := range jobs[1:] {
		row := w.row(job.ID)
		if row == nil {
			t.Fatal("a failed purge's row is gone")
		}
		within(t, "failed purge's next attempt", row.NextAttemptAt, before.Add(purge.MinBackoff/2), after.Add(purge.MinBackoff))
		if row.LastError == "" {
			t.Error("the failure is not recorded")
		}
	}
	if strings.Contains(w.Logs.String(), "record purge failures") {
		t.Errorf("recording the failures failed:\n%s", w.Logs)
	}
}
