package purge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/purge"
)

// TestScheduleFor: deleting uploads queues a purge for each that stored
// something. A stored upload's purge is attempted inline and due for the
// background loop only after twice the inline timeout; a PENDING upload's
// waits until its bytes can no longer be arriving, then aborts every
// multipart upload of its key. An upload that stored nothing has none.
func TestScheduleFor(t *testing.T) {
	t.Parallel()
	const inline, uploadTimeout = 3 * time.Second, 10 * time.Minute
	w := newWorld(t, func(c *config.Config) { c.PurgeInlineTimeout, c.UploadTimeout = inline, uploadTimeout })
	uploads := []*ent.Upload{
		{ID: "upl_stored", Bucket: w.Bucket, ObjectKey: "stored", Status: upload.StatusCOMPLETED},
		{ID: "upl_nothing", Status: upload.StatusFAILED},
		{ID: "upl_pending", Bucket: w.Bucket, ObjectKey: "pending", MultipartUploadID: "mp-1", Status: upload.StatusPENDING},
		{ID: "upl_partial", Bucket: w.Bucket, ObjectKey: "partial", MultipartUploadID: "mp-2", Status: upload.StatusFAILED},
	}
	before := time.Now()
	jobs := w.schedule(w.scheduleFor(time.Time{}), uploads...)
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

	if jobs := w.schedule(w.scheduleFor(time.Time{}), uploads[1]); jobs != nil {
		t.Errorf("purges for an upload that stored nothing: %v", uploadIDs(jobs))
	}
}

// TestScheduleStopped: uploads whose storing stopped without finishing get
// a purge each, attempted at once, that aborts every multipart upload of
// the key; one that stored nothing gets none.
func TestScheduleStopped(t *testing.T) {
	t.Parallel()
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

// TestTrashPurges: with a restore window, a stored upload's purge waits,
// unclaimed, for the window's end and is not attempted inline; a PENDING
// upload's ignores the window. Unschedule takes back only an unclaimed
// purge in its window; Expedite claims one for an attempt now, once.
func TestTrashPurges(t *testing.T) {
	t.Parallel()
	const inline = 3 * time.Second
	w := newWorld(t, func(c *config.Config) { c.PurgeInlineTimeout, c.UploadTimeout = inline, time.Minute })
	keep := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	uploads := []*ent.Upload{
		{ID: "upl_kept", Bucket: w.Bucket, ObjectKey: "kept", Status: upload.StatusCOMPLETED},
		{ID: "upl_restored", Bucket: w.Bucket, ObjectKey: "restored", Status: upload.StatusCOMPLETED},
		{ID: "upl_pending", Bucket: w.Bucket, ObjectKey: "pending", Status: upload.StatusPENDING},
	}
	if jobs := w.schedule(w.scheduleFor(keep), uploads...); len(jobs) != 0 {
		t.Fatalf("purges attempted inline inside the window: %v", uploadIDs(jobs))
	}
	ctx := context.Background()
	for _, row := range w.Client().ObjectPurge.Query().AllX(ctx) {
		switch {
		case row.UploadID == "upl_pending" && (row.Attempts != 1 || !row.AbortAllMultipart || !row.NextAttemptAt.Before(keep)):
			t.Errorf("PENDING upload's purge kept for the window: %+v", row)
		case row.UploadID != "upl_pending" && (row.Attempts != 0 || !row.NextAttemptAt.Equal(keep)):
			t.Errorf("kept purge: attempts %d, due %s; want 0, the window's end %s", row.Attempts, row.NextAttemptAt, keep)
		}
	}
	inTx := func(f func(tx *ent.Tx) error) {
		t.Helper()
		if err := database.WithTx(ctx, w.Client(), f); err != nil {
			t.Fatal(err)
		}
	}
	var back bool
	inTx(func(tx *ent.Tx) (err error) { back, err = w.purger().Unschedule(ctx, tx, "upl_restored"); return err })
	if !back || w.Client().ObjectPurge.Query().Where(objectpurge.UploadID("upl_restored")).ExistX(ctx) {
		t.Error("Unschedule did not take back an unclaimed purge in its window")
	}
	inTx(func(tx *ent.Tx) (err error) { back, err = w.purger().Unschedule(ctx, tx, "upl_pending"); return err })
	if back {
		t.Error("Unschedule took back a claimed (attempted) purge")
	}
	var job *ent.ObjectPurge
	inTx(func(tx *ent.Tx) (err error) { job, err = w.purger().Expedite(ctx, tx, "upl_kept"); return err })
	if job == nil || job.Attempts != 1 || !job.NextAttemptAt.After(time.Now()) || job.NextAttemptAt.After(time.Now().Add(2*inline)) {
		t.Fatalf("Expedite = %+v, want the purge claimed for an inline attempt", job)
	}
	if row := w.row(job.ID); row.Attempts != 1 || !row.NextAttemptAt.Before(keep) {
		t.Errorf("expedited purge in the database: %+v", row)
	}
	inTx(func(tx *ent.Tx) (err error) { back, err = w.purger().Unschedule(ctx, tx, "upl_kept"); return err })
	inTx(func(tx *ent.Tx) (err error) { job, err = w.purger().Expedite(ctx, tx, "upl_kept"); return err })
	if back || job != nil {
		t.Errorf("an expedited purge was taken back (%v) or claimed again (%v)", back, job)
	}
}

// TestScheduleOneAsMany: a single delete's purge note (written by a
// statement of its own, not Ent's) is the note a batch writes for the same
// upload, field for field, and what ScheduleFor hands back to attempt is
// what was stored: kept in the trash, still storing, or purged at once.
func TestScheduleOneAsMany(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	asked := purge.Request{Actor: audit.Actor{Name: "key_1", Via: auditevent.ViaREST}, At: time.Now()}
	toDelete := func(id string, status upload.Status) *ent.Upload {
		return &ent.Upload{ID: id, OwnerID: "usr_1", Filename: id + ".txt", Size: 7, Bucket: w.Bucket, ObjectKey: "k/" + id, MultipartUploadID: "mp-" + id, Status: status}
	}
	// Stored rows and returned purges, as comparable text: the id, upload
	// and key aside, times to PostgreSQL's microsecond, and when the purge
	// is due as a delay from the request (each call has its own now).
	shape := func(j *ent.ObjectPurge) string {
		return fmt.Sprintf("%s %s %s %v %s %s %d %s %s %s %s %d %s %q %s %q",
			j.Bucket, strings.TrimPrefix(j.MultipartUploadID, "mp-"+j.UploadID), j.Filename[len(j.UploadID):], j.AbortAllMultipart, j.OwnerID,
			j.UploadStatus, j.Size, j.DeletionJobID, j.RequestedBy, j.RequestedVia, j.CreatedAt.UTC().Truncate(time.Microsecond),
			j.Attempts, j.NextAttemptAt.Sub(j.CreatedAt).Round(time.Second), j.LastError, j.ObjectKey[len("k/"+j.UploadID):], j.Traceparent)
	}
	for _, c := range []struct {
		name      string
		keepUntil time.Time
		status    upload.Status
	}{{"purged at once", time.Time{}, upload.StatusCOMPLETED}, {"kept", time.Now().Add(time.Hour), upload.StatusCOMPLETED}, {"still storing", time.Time{}, upload.StatusPENDING}} {
		var one, many []*ent.ObjectPurge
		err := database.WithTx(ctx, w.Client(), func(tx *ent.Tx) (err error) {
			id := strings.ReplaceAll(c.name, " ", "-")
			if one, err = w.purger().ScheduleFor(ctx, tx, c.keepUntil, asked, toDelete("upl_one-"+id, c.status)); err != nil {
				return err
			}
			many, err = w.purger().ScheduleFor(ctx, tx, c.keepUntil, asked, toDelete("upl_many-"+id, c.status), toDelete("upl_more-"+id, c.status))
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		stored := func(uploadID string) *ent.ObjectPurge {
			return w.Client().ObjectPurge.Query().Where(objectpurge.UploadID(uploadID)).OnlyX(ctx)
		}
		oneRow := stored("upl_one-" + strings.ReplaceAll(c.name, " ", "-"))
		manyRow := stored("upl_many-" + strings.ReplaceAll(c.name, " ", "-"))
		if shape(oneRow) != shape(manyRow) {
			t.Errorf("%s: a single delete's note\n  %s\na batch's\n  %s", c.name, shape(oneRow), shape(manyRow))
		}
		if len(one) != len(many)/2 {
			t.Fatalf("%s: %d purges to attempt of one, %d of two", c.name, len(one), len(many))
		}
		if len(one) == 1 && (one[0].ID != oneRow.ID || shape(one[0]) != shape(oneRow)) {
			t.Errorf("%s: handed back\n  %d %s\nstored\n  %d %s", c.name, one[0].ID, shape(one[0]), oneRow.ID, shape(oneRow))
		}
	}
}
