package purge_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
)

// TestAttempt: one attempt removes everything stored under the key (the
// object and the multipart uploads it must abort). When S3 fails, the
// purge stays, with the error.
func TestAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		multiparts  int  // incomplete multipart uploads of the key
		recorded    bool // the purge names the first
		abortAll    bool // the purge aborts every one, recorded or not
		outage      bool
		objectStays bool
		left        int // multipart uploads left
	}{
		{name: "object"},
		{name: "object and its multipart upload", multiparts: 1, recorded: true},
		{name: "object and every multipart upload of the key", multiparts: 2, abortAll: true},
		{name: "S3 down", multiparts: 2, abortAll: true, outage: true, objectStays: true, left: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, nil)
			ctx := context.Background()
			key := w.storeObjects(1)[0]
			create := w.Client().ObjectPurge.Create().SetBucket(w.Bucket).SetObjectKey(key).SetUploadID("upl_purged").
				SetAbortAllMultipart(tc.abortAll).SetAttempts(1).SetNextAttemptAt(time.Now().Add(time.Minute))
			for i := range tc.multiparts {
				if id := w.startMultipart(key); i == 0 && tc.recorded {
					create.SetMultipartUploadID(id)
				}
			}
			job := create.SaveX(ctx)
			if tc.outage {
				w.S3.SetMode(faultproxy.Refuse)
			}

			err := w.purger().Attempt(ctx, job)
			w.S3.SetMode(faultproxy.Pass)
			if (err != nil) != tc.outage {
				t.Fatalf("Attempt = %v", err)
			}
			if stays := w.ObjectExists(key); stays != tc.objectStays {
				t.Errorf("object stays: %v, want %v", stays, tc.objectStays)
			}
			if tc.multiparts > 0 { // (some servers answer 404 when a bucket never had one)
				if n := w.IncompleteMultipartUploads(); n != tc.left {
					t.Errorf("%d multipart uploads left, want %d", n, tc.left)
				}
			}
			row := w.row(job.ID)
			if done := row == nil; done == tc.outage {
				t.Fatalf("purge done: %v after %v", done, err)
			}
			if tc.outage && (row.LastError == "" || row.Attempts != 1) {
				t.Errorf("failed purge: %+v", row)
			}
		})
	}
}

// TestOneTryPerAttempt: the purger is the retry loop, with its own
// backoff: while S3 answers 500, an attempt, inline or from the loop, asks
// S3 once, not again after the SDK's backoff.
func TestOneTryPerAttempt(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	keys := w.storeObjects(2)
	w.S3.SetMode(faultproxy.InternalError)
	inline := w.scheduled(keys[0])
	before := w.S3.Requests()
	if n := w.purger().AttemptInline(context.Background(), inline...); n != 0 {
		t.Fatalf("AttemptInline = %d purged while S3 answers 500", n)
	}
	if n := w.S3.Requests() - before; n != 1 {
		t.Errorf("an inline attempt made %d requests to S3, want 1", n)
	}
	w.due(keys[1])
	before = w.S3.Requests()
	if attempted, purged, err := w.purger().RunOnce(context.Background()); attempted != 1 || purged != 0 || err != nil {
		t.Fatalf("RunOnce = %d attempted, %d purged, %v; want the one due purge, failed", attempted, purged, err)
	}
	if n := w.S3.Requests() - before; n != 1 {
		t.Errorf("the loop's attempt made %d requests to S3, want 1", n)
	}
}
