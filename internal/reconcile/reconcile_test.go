package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/testenv"
)

// later ages every object by two hours, past the default grace period.
func later() time.Time { return time.Now().Add(2 * time.Hour) }

// TestOrphanQueuedAndPurged: an object no record knows is reported; a repair
// queues it and the normal purger removes it; afterwards there is no drift.
func TestOrphanQueuedAndPurged(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, apiKey := env.NewUser()
	kept := env.MustUpload(apiKey, "kept.txt", []byte("kept"))
	plant(t, env, "stray/orphan.bin", []byte("orphan"))

	report := run(t, env, reconcile.Options{Now: later})
	if len(report.OrphanedObjects) != 1 {
		t.Fatalf("orphans = %+v, want stray/orphan.bin only", report.OrphanedObjects)
	}
	orphan := report.OrphanedObjects[0]
	if orphan.Key != "stray/orphan.bin" || orphan.Size != 6 || orphan.LastModified.IsZero() || orphan.Queued || orphan.TooYoung {
		t.Errorf("orphan = %+v", orphan)
	}
	if report.ObjectsScanned != 2 || report.RecordsScanned != 1 || len(report.MissingObjects) != 0 {
		t.Errorf("report = %+v", report)
	}
	if n := env.PendingPurges(); n != 0 {
		t.Fatalf("a report-only run queued %d purges", n)
	}

	report = run(t, env, reconcile.Options{Repair: true, Now: later})
	if len(report.OrphanedObjects) != 1 || !report.OrphanedObjects[0].Queued {
		t.Fatalf("orphans after repair = %+v, want stray/orphan.bin queued", report.OrphanedObjects)
	}
	if !env.ObjectExists("stray/orphan.bin") {
		t.Fatal("reconcile deleted the object itself; it must only queue it")
	}
	_, purged, err := env.App.Purger.RunOnce(context.Background())
	if err != nil || purged != 1 {
		t.Fatalf("RunOnce = %d, %v; want 1 purged", purged, err)
	}
	if env.ObjectExists("stray/orphan.bin") {
		t.Error("orphan still stored after the purger ran")
	}
	if !env.ObjectExists(kept.ObjectKey) {
		t.Error("the upload's object was purged too")
	}
	if report := run(t, env, reconcile.Options{Repair: true, Now: later}); !report.Clean() {
		t.Errorf("drift after repair: %+v", report)
	}
}

// TestYoungOrphanLeftAlone: an orphan younger than the grace period (the
// default, an hour) is reported as too young and not queued, even with
// Repair; so is one younger than an explicit grace, whatever the clock says.
func TestYoungOrphanLeftAlone(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	plant(t, env, "young.bin", []byte("new"))

	for _, opts := range []reconcile.Options{
		{Repair: true},
		{Repair: true, Grace: 3 * time.Hour, Now: later},
	} {
		report := run(t, env, opts)
		if len(report.OrphanedObjects) != 1 {
			t.Fatalf("orphans = %+v", report.OrphanedObjects)
		}
		if o := report.OrphanedObjects[0]; o.Key != "young.bin" || !o.TooYoung || o.Queued {
			t.Errorf("grace %v: orphan = %+v, want too young and not queued", opts.Grace, o)
		}
		if n := env.PendingPurges(); n != 0 {
			t.Fatalf("grace %v: %d purges queued for a young object", opts.Grace, n)
		}
	}
	if !env.ObjectExists("young.bin") {
		t.Error("young object gone")
	}
}

// TestMissingObjectReported: a COMPLETED upload whose object vanished from
// the bucket is reported with its owner, and neither the record nor the
// queue is touched.
func TestMissingObjectReported(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	ownerID, apiKey := env.NewUser()
	lost := env.MustUpload(apiKey, "lost.txt", []byte("lost"))
	env.MustUpload(apiKey, "fine.txt", []byte("fine"))
	if err := env.Direct.Delete(context.Background(), env.Bucket, lost.ObjectKey); err != nil {
		t.Fatal(err)
	}

	report := run(t, env, reconcile.Options{Repair: true, Now: later})
	want := reconcile.MissingObject{UploadID: lost.ID, OwnerID: ownerID, Key: lost.ObjectKey, CreatedAt: lost.CreatedAt.UTC()}
	if len(report.MissingObjects) != 1 || !sameMissing(report.MissingObjects[0], want) {
		t.Fatalf("missing = %+v, want [%+v]", report.MissingObjects, want)
	}
	if len(report.OrphanedObjects) != 0 {
		t.Errorf("orphans = %+v", report.OrphanedObjects)
	}
	if _, err := env.Client().Upload.Get(context.Background(), lost.ID); err != nil {
		t.Errorf("record of the missing object touched: %v", err)
	}
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges queued", n)
	}
}

// TestCleanStateHasNoDrift: normal uploads, an upload deleted during an S3
// outage (its object known only to its pending purge), and PENDING and
// FAILED records without objects are all as they should be.
func TestCleanStateHasNoDrift(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	ownerID, apiKey := env.NewUser()
	env.MustUpload(apiKey, "a.txt", []byte("a"))
	env.MustUpload(apiKey, "b.txt", []byte("b"))
	deleted := env.MustUpload(apiKey, "deleted.txt", []byte("deleted"))

	env.S3.SetMode(faultproxy.Refuse)
	if res := env.DeleteREST(apiKey, deleted.ID); res.Status != 200 {
		t.Fatalf("delete during outage: %d %s", res.Status, res.Body)
	}
	env.S3.SetMode(faultproxy.Pass)
	if !env.ObjectExists(deleted.ObjectKey) || env.PendingPurges() != 1 {
		t.Fatal("want the deleted upload's object stored and its purge pending")
	}
	// A PENDING upload may not have written its object yet; a FAILED one
	// may have stored nothing. Neither is drift.
	for _, status := range []upload.Status{upload.StatusPENDING, upload.StatusFAILED} {
		_, err := env.Client().Upload.Create().
			SetOwnerID(ownerID).SetFilename("x.txt").SetContentType("text/plain").SetSize(1).
			SetStatus(status).SetBucket(env.Bucket).SetObjectKey("uploads/" + ownerID + "/never-" + string(status)).
			Save(context.Background())
		if err != nil {
			t.Fatal(err)
		}
	}

	// The clock two hours on, the PENDING upload is still within its (long)
	// upload timeout.
	report := run(t, env, reconcile.Options{Repair: true, Now: later, UploadTimeout: 3 * time.Hour})
	if !report.Clean() {
		t.Errorf("drift in a clean state: orphans %+v, missing %+v, stuck %+v", report.OrphanedObjects, report.MissingObjects, report.StuckUploads)
	}
	if report.ObjectsScanned != 3 || report.RecordsScanned != 4 {
		t.Errorf("scanned %d objects, %d records; want 3, 4", report.ObjectsScanned, report.RecordsScanned)
	}
	if n := env.PendingPurges(); n != 1 {
		t.Errorf("pending purges = %d, want the delete's one only", n)
	}
	var text strings.Builder
	if err := report.WriteText(&text); err != nil || !strings.Contains(text.String(), "No drift.") {
		t.Errorf("WriteText = %q, %v", text.String(), err)
	}
}

// TestQueuedOnce: an orphan queued by one repair is referenced by its
// pending purge, so the next repair neither reports nor queues it again.
func TestQueuedOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	plant(t, env, "twice.bin", []byte("x"))

	first := run(t, env, reconcile.Options{Repair: true, Now: later})
	if len(first.OrphanedObjects) != 1 || !first.OrphanedObjects[0].Queued {
		t.Fatalf("first repair: %+v", first.OrphanedObjects)
	}
	second := run(t, env, reconcile.Options{Repair: true, Now: later})
	if !second.Clean() {
		t.Errorf("second repair: orphans %+v", second.OrphanedObjects)
	}
	purges, err := env.Client().ObjectPurge.Query().Where(objectpurge.ObjectKey("twice.bin")).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(purges) != 1 || purges[0].UploadID != reconcile.PurgeUploadID || purges[0].Bucket != env.Bucket {
		t.Errorf("purges = %+v, want one queued by reconcile", purges)
	}
}

// TestListsEveryPage: objects and records beyond the first page are all
// compared (pages of two). The embedded S3 server ignores max-keys and lists
// everything at once, so the listing's pagination is exercised by the runs
// against other servers (TEST_S3_ENDPOINT, .ci/run).
func TestListsEveryPage(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, apiKey := env.NewUser()
	var uploads []string
	for range 3 {
		uploads = append(uploads, env.MustUpload(apiKey, "f.txt", []byte("f")).ObjectKey)
	}
	for _, key := range []string{"zz/1", "zz/2", "zz/3"} {
		plant(t, env, key, []byte("z"))
	}
	if err := env.Direct.Delete(context.Background(), env.Bucket, uploads[2]); err != nil {
		t.Fatal(err)
	}

	report := run(t, env, reconcile.Options{PageSize: 2, Now: later})
	if report.ObjectsScanned != 5 || report.RecordsScanned != 3 {
		t.Errorf("scanned %d objects, %d records; want 5, 3", report.ObjectsScanned, report.RecordsScanned)
	}
	var orphans []string
	for _, o := range report.OrphanedObjects {
		orphans = append(orphans, o.Key)
	}
	if strings.Join(orphans, " ") != "zz/1 zz/2 zz/3" {
		t.Errorf("orphans = %v", orphans)
	}
	if len(report.MissingObjects) != 1 || report.MissingObjects[0].Key != uploads[2] {
		t.Errorf("missing = %+v, want %s", report.MissingObjects, uploads[2])
	}
}

// TestStoreUnreachable: when the bucket cannot be listed the run fails; it
// must not report every record's object as missing.
func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, apiKey := env.NewUser()
	env.MustUpload(apiKey, "a.txt", []byte("a"))
	env.S3.SetMode(faultproxy.Refuse)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	report, err := reconcile.Run(ctx, env.Client(), env.App.Store, reconcile.Options{Repair: true, Now: later, UploadTimeout: time.Minute})
	if err == nil || errors.Is(err, reconcile.ErrNoUploadTimeout) {
		t.Fatalf("Run = %+v, %v; want S3's error", report, err)
	}
	if env.PendingPurges() != 0 {
		t.Error("purges queued by a failed run")
	}
}

// TestReportFormats: the JSON field names are the documented ones, and the
// text names every finding and what was done with it.
func TestReportFormats(t *testing.T) {
	t.Parallel()
	modified := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	report := &reconcile.Report{
		Bucket: "uploads", Repair: true, GraceSeconds: 3600, StuckAfterSeconds: 1860,
		ObjectsScanned: 3, RecordsScanned: 2, MultipartUploadsScanned: 2,
		OrphanedObjects: []reconcile.OrphanedObject{
			{Key: "old.bin", Size: 10, LastModified: modified, Queued: true},
			{Key: "new.bin", Size: 20, LastModified: modified, TooYoung: true},
		},
		OrphanedMultipartUploads: []reconcile.OrphanedMultipartUpload{
			{Key: "parts.bin", MultipartUploadID: "mpu-1", Initiated: modified, Queued: true},
		},
		MissingObjects: []reconcile.MissingObject{{UploadID: "upl_1", OwnerID: "usr_1", Key: "uploads/usr_1/upl_1"}},
		StuckUploads: []reconcile.StuckUpload{
			{UploadID: "upl_2", OwnerID: "usr_2", Key: "uploads/usr_2/upl_2", CreatedAt: modified, ObjectStored: true, MultipartUploads: 1},
		},
	}

	raw, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		ObjectsScanned           *int             `json:"objects_scanned"`
		RecordsScanned           *int             `json:"records_scanned"`
		OrphanedObjects          []map[string]any `json:"orphaned_objects"`
		OrphanedMultipartUploads []map[string]any `json:"orphaned_multipart_uploads"`
		MissingObjects           []map[string]any `json:"missing_objects"`
		StuckUploads             []map[string]any `json:"stuck_uploads"`
	}
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.ObjectsScanned == nil || *decoded.ObjectsScanned != 3 || decoded.RecordsScanned == nil || *decoded.RecordsScanned != 2 {
		t.Errorf("counts missing from %s", raw)
	}
	for _, field := range []string{"key", "size", "last_modified", "queued", "too_young"} {
		if _, ok := decoded.OrphanedObjects[0][field]; !ok {
			t.Errorf("orphan has no %q: %s", field, raw)
		}
	}
	for _, field := range []string{"upload_id", "owner_id", "key"} {
		if _, ok := decoded.MissingObjects[0][field]; !ok {
			t.Errorf("missing object has no %q: %s", field, raw)
		}
	}
	for _, field := range []string{"key", "multipart_upload_id", "initiated", "queued", "too_young"} {
		if _, ok := decoded.OrphanedMultipartUploads[0][field]; !ok {
			t.Errorf("orphaned multipart upload has no %q: %s", field, raw)
		}
	}
	for _, field := range []string{"upload_id", "owner_id", "key", "created_at", "object_stored", "multipart_uploads"} {
		if _, ok := decoded.StuckUploads[0][field]; !ok {
			t.Errorf("stuck upload has no %q: %s", field, raw)
		}
	}

	// A run that found nothing says so with empty lists, not nulls.
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	raw, err = json.Marshal(run(t, env, reconcile.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"orphaned_objects", "orphaned_multipart_uploads", "missing_objects", "stuck_uploads"} {
		if !strings.Contains(string(raw), `"`+field+`":[]`) {
			t.Errorf("empty %s must be [] for JSON readers: %s", field, raw)
		}
	}

	var text strings.Builder
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Bucket uploads: 3 objects, 2 upload records (repair, grace 1h0m0s)",
		"2 incomplete multipart uploads.", "old.bin", "queued for purge", "new.bin", "younger than the grace period",
		"Orphaned multipart uploads", "parts.bin", "mpu-1", "upl_1", "usr_1",
		"stuck in PENDING for over 31m0s (reported only: the service's janitor marks them FAILED and purges them): 1",
		"upl_2", "object stored, 1 incomplete multipart uploads"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("text report:\n%s", text.String())
}

// run reconciles env's bucket through the service's own store, with the
// service's upload timeout unless opts has one, as the command does.
func run(t *testing.T, env *testenv.Env, opts reconcile.Options) *reconcile.Report {
	t.Helper()
	if opts.UploadTimeout == 0 {
		opts.UploadTimeout = env.Config.UploadTimeout
	}
	report, err := reconcile.Run(context.Background(), env.Client(), env.App.Store, opts)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return report
}

// plant writes an object straight into the bucket, as a stray writer or a
// lost database row would leave it.
func plant(t *testing.T, env *testenv.Env, key string, content []byte) {
	t.Helper()
	_, err := env.Direct.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket:        aws.String(env.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(content),
		ContentLength: aws.Int64(int64(len(content))),
	})
	if err != nil {
		t.Fatalf("plant %s: %v", key, err)
	}
}

// sameMissing compares two findings, the creation time to the second (the
// database may round it).
func sameMissing(got, want reconcile.MissingObject) bool {
	return got.UploadID == want.UploadID && got.OwnerID == want.OwnerID && got.Key == want.Key &&
		got.CreatedAt.Truncate(time.Second).Equal(want.CreatedAt.Truncate(time.Second))
}
