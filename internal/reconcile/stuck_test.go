package reconcile_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestStuckUploadsReported: PENDING uploads older than the upload timeout
// (a minute here) plus the margin are reported, whether their object was
// stored or not; younger ones, and one past the timeout but within the
// margin, are not; nor are old COMPLETED and FAILED ones. A repair leaves
// them all alone: the janitor's job.
func TestStuckUploadsReported(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	ownerID, _ := env.NewUser()
	now := time.Now()
	stored := pendingRecord(t, env, ownerID, "stored", now.Add(-2*time.Hour))
	plant(t, env, stored.ObjectKey, []byte("whole object"))
	bare := pendingRecord(t, env, ownerID, "bare", now.Add(-2*time.Hour))
	pendingRecord(t, env, ownerID, "within-margin", now.Add(-90*time.Second))
	pendingRecord(t, env, ownerID, "fresh", now)
	completed := uploadRecord(t, env, ownerID, "completed", upload.StatusCOMPLETED, now.Add(-2*time.Hour))
	plant(t, env, completed.ObjectKey, []byte("done"))
	uploadRecord(t, env, ownerID, "failed", upload.StatusFAILED, now.Add(-2*time.Hour))

	report := run(t, env, reconcile.Options{Repair: true})
	type expected struct {
		record       *ent.Upload
		objectStored bool
	}
	want := map[string]expected{stored.ID: {stored, true}, bare.ID: {bare, false}}
	if len(report.StuckUploads) != len(want) {
		t.Fatalf("stuck = %+v, want %s and %s", report.StuckUploads, stored.ID, bare.ID)
	}
	for _, s := range report.StuckUploads {
		w, ok := want[s.UploadID]
		if !ok || s.ObjectStored != w.objectStored || s.OwnerID != ownerID || s.Key != w.record.ObjectKey ||
			s.MultipartUploads != 0 || !s.CreatedAt.Truncate(time.Second).Equal(w.record.CreatedAt.UTC().Truncate(time.Second)) {
			t.Errorf("stuck upload %+v", s)
		}
	}
	if report.Clean() {
		t.Error("Clean() with stuck uploads")
	}
	if report.StuckAfterSeconds != (time.Minute + reconcile.StuckMargin).Seconds() {
		t.Errorf("stuck after %vs", report.StuckAfterSeconds)
	}
	if len(report.OrphanedObjects) != 0 || len(report.MissingObjects) != 0 || env.PendingPurges() != 0 {
		t.Errorf("a stuck upload's object was taken for an orphan: %+v", report.OrphanedObjects)
	}
	pending, err := env.Client().Upload.Query().Where(upload.StatusEQ(upload.StatusPENDING)).Count(context.Background())
	if err != nil || pending != 4 {
		t.Errorf("PENDING records after a repair: %d, %v; want all 4 left to the janitor", pending, err)
	}
	var text strings.Builder
	if err := report.WriteText(&text); err != nil || !strings.Contains(text.String(), "janitor") || !strings.Contains(text.String(), stored.ID) {
		t.Errorf("WriteText = %q, %v", text.String(), err)
	}
}

// TestRunNeedsUploadTimeout: without the service's upload timeout a run
// cannot tell a stuck upload from a slow one, and refuses to start.
func TestRunNeedsUploadTimeout(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	report, err := reconcile.Run(context.Background(), env.Client(), env.App.Store, reconcile.Options{})
	if !errors.Is(err, reconcile.ErrNoUploadTimeout) || report != nil {
		t.Errorf("Run = %+v, %v; want ErrNoUploadTimeout", report, err)
	}
}

// pendingRecord writes a PENDING upload record of ownerID created at
// createdAt, as a crash mid-upload leaves it.
func pendingRecord(t *testing.T, env *testenv.Env, ownerID, name string, createdAt time.Time) *ent.Upload {
	t.Helper()
	return uploadRecord(t, env, ownerID, name, upload.StatusPENDING, createdAt)
}

// uploadRecord writes an upload record of ownerID with status, created at
// createdAt, whose object key ends in name.
func uploadRecord(t *testing.T, env *testenv.Env, ownerID, name string, status upload.Status, createdAt time.Time) *ent.Upload {
	t.Helper()
	u, err := env.Client().Upload.Create().
		SetOwnerID(ownerID).SetFilename(name + ".bin").SetContentType("application/octet-stream").SetSize(1 << 20).
		SetStatus(status).SetBucket(env.Bucket).SetObjectKey("uploads/" + ownerID + "/" + name).
		SetCreatedAt(createdAt).
		Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}
