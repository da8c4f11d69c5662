package objectlock_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/legalholdsync"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/testenv"
)

func place(t *testing.T, env *testenv.Env, spec holds.Spec) *ent.Hold {
	t.Helper()
	spec.Reason, spec.Actor = "litigation", audit.CLI
	h, err := holds.Place(context.Background(), env.Client(), spec, nil)
	if err != nil {
		t.Fatalf("place hold: %v", err)
	}
	return h
}

func release(t *testing.T, env *testenv.Env, h *ent.Hold) {
	t.Helper()
	if _, err := holds.Release(context.Background(), env.Client(), h.ID, audit.CLI, "", nil); err != nil {
		t.Fatalf("release hold: %v", err)
	}
}

// waitLegalHolds waits for the mirror to settle (every note applied or
// waiting for its hold's until), then checks that every version of key,
// versions of them, has its legal hold on (or off).
func waitLegalHolds(t *testing.T, env *testenv.Env, key string, versions int, on bool) {
	t.Helper()
	waitForNoNotes(t, env)
	gotOn, gotOff := legalHolds(t, env, key)
	if want := map[bool][2]int{true: {versions, 0}, false: {0, versions}}[on]; [2]int{gotOn, gotOff} != want {
		t.Fatalf("the mirror settled with %d versions of %s locked and %d unlocked, want %d and %d", gotOn, key, gotOff, want[0], want[1])
	}
}

func legalHolds(t *testing.T, env *testenv.Env, key string) (on, off int) {
	t.Helper()
	on, off, err := env.Direct.LegalHolds(context.Background(), env.Bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return on, off
}

// versionIDs lists the version ids of exactly key, asking S3 directly.
func versionIDs(t *testing.T, env *testenv.Env, key string) []string {
	t.Helper()
	out, err := env.Direct.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(env.Bucket), Prefix: aws.String(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	return ids
}

// deleteVersion deletes one version of key with the bucket's own
// credentials, past the service, as someone holding them could.
func deleteVersion(env *testenv.Env, key, versionID string) error {
	_, err := env.Direct.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(key), VersionId: aws.String(versionID),
	})
	return err
}

// TestHoldLocksEveryVersion is the proof: a held upload's every
// version carries the S3 legal hold, so that a direct DeleteObject of a
// version with the bucket's own credentials is refused by the server;
// released, the lock is off, and deleting the upload purges every version.
func TestHoldLocksEveryVersion(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "contract.pdf", []byte("first version"))
	// A second version of the same key, as an overwrite would leave.
	if _, err := env.Direct.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(u.ObjectKey), Body: bytes.NewReader([]byte("second version")),
	}); err != nil {
		t.Fatal(err)
	}
	h := place(t, env, holds.Spec{UploadID: u.ID})
	waitLegalHolds(t, env, u.ObjectKey, 2, true)
	for _, versionID := range versionIDs(t, env, u.ObjectKey) {
		if err := deleteVersion(env, u.ObjectKey, versionID); err == nil {
			t.Fatalf("the server deleted version %s of a held upload's object", versionID)
		}
	}
	if n := env.Versions(u.ObjectKey); n != 2 {
		t.Fatalf("%d versions left of the held object, want 2", n)
	}

	release(t, env, h)
	// Deleted at once: the purge may meet the lock still on, and retries.
	if res := env.DeleteREST(apiKey, u.ID); res.Status != http.StatusOK {
		t.Fatalf("delete after release: %d %s", res.Status, res.Body)
	}
	env.Eventually(20*time.Second, "the purge to remove every version", func() bool {
		return env.PendingPurges() == 0 && env.Versions(u.ObjectKey) == 0
	})
}

// TestPurgeRefusedSetsTheHoldAgain: a purge that S3 refuses because a
// version's legal hold is on, though no hold covers the deleted upload,
// has the mirror set the holds as the holds say again, and then ends. A
// server can leave a hold on so: versitygw keeps the hold of the older
// version when it is turned off while the removal of the newer one makes
// that one current (TestHoldLocksEveryVersion met it about once in ten
// runs), and the purge was refused for good.
func TestPurgeRefusedSetsTheHoldAgain(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "contract.pdf", []byte("signed"))
	h := place(t, env, holds.Spec{UploadID: u.ID})
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	release(t, env, h)
	waitLegalHolds(t, env, u.ObjectKey, 1, false)
	// As the server's race leaves it: the hold on, with none in force.
	if err := env.Direct.SetLegalHold(context.Background(), env.Bucket, u.ObjectKey, true); err != nil {
		t.Fatal(err)
	}

	// The delete's own attempt is refused, and says so before it answers.
	if res := env.DeleteREST(apiKey, u.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	waitForNoNotes(t, env)
	if on, _ := legalHolds(t, env, u.ObjectKey); on != 0 {
		t.Fatalf("the purge was refused, and %d version of the deleted upload's object keeps its legal hold", on)
	}
	env.Eventually(10*time.Second, "the purge to remove the object", func() bool {
		return env.PendingPurges() == 0 && env.Versions(u.ObjectKey) == 0
	})
}

// TestUserHoldLocksFutureUploads: a hold on a user locks the objects of
// their uploads stored before it and after it; releasing it unlocks both.
func TestUserHoldLocksFutureUploads(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	userID, apiKey := env.NewUser()
	before := env.MustUpload(apiKey, "before.txt", []byte("before"))
	h := place(t, env, holds.Spec{UserID: userID})
	waitLegalHolds(t, env, before.ObjectKey, 1, true)
	after := env.MustUpload(apiKey, "after.txt", []byte("after"))
	waitLegalHolds(t, env, after.ObjectKey, 1, true)
	versionID := versionIDs(t, env, after.ObjectKey)[0]
	if err := deleteVersion(env, after.ObjectKey, versionID); err == nil {
		t.Fatal("the server deleted the object of an upload stored after its owner was held")
	}
	release(t, env, h)
	waitLegalHolds(t, env, before.ObjectKey, 1, false)
	waitLegalHolds(t, env, after.ObjectKey, 1, false)
}

// TestOverlappingHoldsKeepTheLock: releasing an upload's hold leaves the
// lock on while its owner's hold still covers it.
func TestOverlappingHoldsKeepTheLock(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	userID, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	uploadHold := place(t, env, holds.Spec{UploadID: u.ID})
	userHold := place(t, env, holds.Spec{UserID: userID})
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	release(t, env, uploadHold)
	waitForNoNotes(t, env)
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	release(t, env, userHold)
	waitLegalHolds(t, env, u.ObjectKey, 1, false)
}

// TestLapsedHoldUnlocks: a hold's until passing turns the lock off.
func TestLapsedHoldUnlocks(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	place(t, env, holds.Spec{UploadID: u.ID, Until: time.Now().Add(2 * time.Second)})
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	env.Eventually(10*time.Second, "the lapsed hold's lock to be off", func() bool {
		on, off := legalHolds(t, env, u.ObjectKey)
		return on == 0 && off == 1
	})
}

// TestMirrorRetriesAndReconcileReports: while S3 refuses the legal hold
// calls the hold stands (placed, and the upload undeletable), the failure
// is counted, and reconcile reports the hold's mirror missing; once S3
// answers again the mirror catches up and reconcile finds nothing.
func TestMirrorRetriesAndReconcileReports(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	env.S3.FailWhen(func(r *http.Request) bool { return r.URL.Query().Has("legal-hold") })
	place(t, env, holds.Spec{UploadID: u.ID})
	env.Eventually(10*time.Second, "a failed attempt to be counted", func() bool {
		return strings.Contains(metrics(t, env), `uploads_legal_hold_syncs_total{outcome="retry"}`)
	})
	if res := env.DeleteREST(apiKey, u.ID); res.Status != http.StatusConflict {
		t.Fatalf("delete of a held upload whose mirror failed: %d %s, want 409", res.Status, res.Body)
	}
	report, err := reconcile.Run(context.Background(), env.Client(), env.Direct, reconcile.Options{UploadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !report.ObjectLock || len(report.UnmirroredHolds) != 1 || report.UnmirroredHolds[0].UploadID != u.ID ||
		!report.UnmirroredHolds[0].Pending || !report.Drift() {
		t.Fatalf("reconcile's report: object lock %v, unmirrored holds %+v", report.ObjectLock, report.UnmirroredHolds)
	}
	env.S3.FailWhen(nil)
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	waitForNoNotes(t, env)
	if report, err = reconcile.Run(context.Background(), env.Client(), env.Direct, reconcile.Options{UploadTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if len(report.UnmirroredHolds) != 0 {
		t.Fatalf("reconcile after the mirror caught up: %+v", report.UnmirroredHolds)
	}
}

// TestRetryOutlivesAFailedReschedule: when the write that puts a failed
// note off fails too (a database under load), the mirror writes it again
// rather than leaving the note claimed until its lease ends, a minute
// later: the note is applied within seconds once S3 answers.
func TestRetryOutlivesAFailedReschedule(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	var refused atomic.Bool
	env.Client().LegalHoldSync.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			lastError, rescheduling := m.(*ent.LegalHoldSyncMutation).LastError()
			if rescheduling && lastError != "" && refused.CompareAndSwap(false, true) {
				env.S3.FailWhen(nil) // the next attempt succeeds
				return nil, errors.New("injected: the database refused the write")
			}
			return next.Mutate(ctx, m)
		})
	})
	env.S3.FailWhen(func(r *http.Request) bool { return r.URL.Query().Has("legal-hold") })
	place(t, env, holds.Spec{UploadID: u.ID})
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	if !refused.Load() {
		t.Fatal("no reschedule was refused: the test tested nothing")
	}
}

// TestReconcileRepairsALockTurnedOff: a legal hold turned off behind the
// service's back is reported, and --repair has the mirror put it back.
func TestReconcileRepairsALockTurnedOff(t *testing.T) {
	t.Parallel()
	env := testenv.NewObjectLocked(t, testenv.Options{})
	_, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	place(t, env, holds.Spec{UploadID: u.ID})
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
	waitForNoNotes(t, env)
	if err := env.Direct.SetLegalHold(context.Background(), env.Bucket, u.ObjectKey, false); err != nil {
		t.Fatal(err)
	}
	report, err := reconcile.Run(context.Background(), env.Client(), env.Direct, reconcile.Options{UploadTimeout: time.Minute, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.UnmirroredHolds) != 1 || !report.UnmirroredHolds[0].Queued || report.UnmirroredHolds[0].VersionsUnlocked != 1 {
		t.Fatalf("reconcile --repair's report: %+v", report.UnmirroredHolds)
	}
	var text strings.Builder
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), u.ID) || !strings.Contains(text.String(), "lacks the S3 legal hold") {
		t.Fatalf("reconcile's text names no unmirrored hold:\n%s", text.String())
	}
	waitLegalHolds(t, env, u.ObjectKey, 1, true)
}

// waitForNoNotes waits until the mirror has applied every note: none is
// left but those waiting, unattempted, for their hold's until.
func waitForNoNotes(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.Eventually(10*time.Second, "the mirror to apply every note", func() bool {
		n, err := env.Client().LegalHoldSync.Query().
			Where(legalholdsync.Or(legalholdsync.NextAttemptAtLTE(time.Now()), legalholdsync.AttemptsGT(0))).
			Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

func metrics(t *testing.T, env *testenv.Env) string {
	t.Helper()
	return env.Do(http.MethodGet, "/metrics", nil, nil).Body
}

// TestNoObjectLockChangesNothing: on a bucket without Object Lock (the
// embedded server's), holds work as before, their notes are dropped, and
// nothing is asked of S3 beyond the one check of the bucket.
func TestNoObjectLockChangesNothing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, apiKey := env.NewUser()
	u := env.MustUpload(apiKey, "a.txt", []byte("a"))
	var legalHoldCalls atomic.Int64
	env.S3.Observe(func(r *http.Request) {
		if r.URL.Query().Has("legal-hold") {
			legalHoldCalls.Add(1)
		}
	})
	h := place(t, env, holds.Spec{UserID: userID})
	waitForNoNotes(t, env)
	if res := env.DeleteREST(apiKey, u.ID); res.Status != http.StatusConflict {
		t.Fatalf("delete of a held upload: %d %s, want 409", res.Status, res.Body)
	}
	release(t, env, h)
	waitForNoNotes(t, env)
	if !strings.Contains(metrics(t, env), `uploads_legal_hold_syncs_total{outcome="unlocked"}`) {
		t.Fatal("the notes of a bucket without Object Lock were not counted as unlocked")
	}
	if n := legalHoldCalls.Load(); n != 0 {
		t.Fatalf("%d legal hold calls to a bucket without Object Lock", n)
	}
	if res := env.DeleteREST(apiKey, u.ID); res.Status != http.StatusOK {
		t.Fatalf("delete after release: %d %s", res.Status, res.Body)
	}
}
