package purge_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/purge"
)

// TestScheduleFor: deleting uploads queues a purge for each that stored
// something. A stored upload's purge is attempted inline and due for the
// background loop only after twice the inline timeout; a PENDING upload's
// waits until its bytes can no longer be arriving, then aborts every
// multipart upload of its key. An upload that stored nothing has none.
func TestScheduleFor(t *testing.T) {
	const inline, uploadTimeout = 3 * time.Second, 10 * time.Minute
	w := newWorld(t, func(c *config.Config) { c.PurgeInlineTimeout, c.UploadTimeout = inline, uploadTimeout })
	uploads := []*ent.Upload{
		{ID: "upl_stored", Bucket: w.Bucket, ObjectKey: "stored", Status: upload.StatusCOMPLETED},
		{ID: "upl_nothing", Status: upload.StatusFAILED},
		{ID: "upl_pending", Bucket: w.Bucket, ObjectKey: "pending", MultipartUploadID: "mp-1", Status: upload.StatusPENDING},
		{ID: "upl_partial", Bucket: w.Bucket, ObjectKey: "partial", MultipartUploadID: "mp-2", Status: upload.StatusFAILED},
	}
	before := time.Now()
	jobs := w.schedule(w.purger().ScheduleFor, uploads...)
	after := time.Now()

	if len(jobs) != 2 || jobs[0].UploadID != "upl_stored" || jobs[1].UploadID != "upl_partial" {
		t.Fatalf("purges to attempt inline = %v, want those of upl_stored and upl_partial", uploadIDs(jobs))
	}
	rows := w.Client().ObjectPurge.Query().Order(objectpurge.ByUploadID()).AllX(context.Background())
	if len(rows) != 3 {
		t.Fatalf("purges queued for %v, want for the three uploads that stored something", uploadIDs(rows))
	}
	for _, row := range rows {
		t.Run(row.UploadID, func(t *testing.T) {
			if row.Attempts != 1 || row.LastError != "" {
				t.Errorf("attempts %d, last error %q; want the inline attempt counted", row.Attempts, row.LastError)
			}
			if row.UploadID == "upl_pending" {
				if !row.AbortAllMultipart || row.MultipartUploadID != "mp-1" {
					t.Errorf("abort all multipart %v, multipart %q", row.AbortAllMultipart, row.MultipartUploadID)
				}
				within(t, "pending upload's purge", row.NextAttemptAt, before.Add(uploadTimeout+purge.PendingMargin), after.Add(uploadTimeout+purge.PendingMargin))
				return
			}
			if row.AbortAllMultipart || row.Bucket != w.Bucket {
				t.Errorf("purge = %+v", row)
			}
			within(t, "purge after the inline attempt", row.NextAttemptAt, before.Add(2*inline), after.Add(2*inline))
		})
	}

	if jobs := w.schedule(w.purger().ScheduleFor, uploads[1]); jobs != nil {
		t.Errorf("purges for an upload that stored nothing: %v", uploadIDs(jobs))
	}
}

// TestScheduleStopped: uploads whose storing stopped without finishing get
// a purge each, attempted at once, that aborts every multipart upload of
// the key; one that stored nothing gets none.
func TestScheduleStopped(t *testing.T) {
	const inline = 3 * time.Second
	w := newWorld(t, func(c *config.Config) { c.PurgeInlineTimeout = inline })
	uploads := []*ent.Upload{
		{ID: "upl_stopped", Bucket: w.Bucket, ObjectKey: "stopped", Status: upload.StatusPENDING},
		{ID: "upl_nothing", Status: upload.StatusPENDING},
	}
	before := time.Now()
	jobs := w.schedule(w.purger().ScheduleStopped, uploads...)
	after := time.Now()
	if len(jobs) != 1 || jobs[0].UploadID != "upl_stopped" {
		t.Fatalf("purges = %v, want upl_stopped's", uploadIDs(jobs))
	}
	row := w.row(jobs[0].ID)
	if row == nil || !row.AbortAllMultipart || row.Attempts != 1 || row.ObjectKey != "stopped" {
		t.Fatalf("purge = %+v", row)
	}
	within(t, "purge after the inline attempt", row.NextAttemptAt, before.Add(2*inline), after.Add(2*inline))
	if jobs := w.schedule(w.purger().ScheduleStopped, uploads[1]); jobs != nil {
		t.Errorf("purges for an upload that stored nothing: %v", uploadIDs(jobs))
	}
}
