package janitor_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// stored makes an upload record as a crashed or finished uploader left it,
// created at the given time, with an object under its key.
func stored(t *testing.T, env *testenv.Env, userID string, status upload.Status, createdAt time.Time) *ent.Upload {
	t.Helper()
	ctx := context.Background()
	u := env.Client().Upload.Create().SetOwnerID(userID).SetFilename("f.txt").SetContentType("text/plain").
		SetSize(1).SetStatus(status).SetBucket(env.Bucket).SetCreatedAt(createdAt).SetUpdatedAt(createdAt).
		SetObjectKey("uploads/" + userID + "/" + time.Now().Format("150405.000000000")).
		SaveX(ctx)
	if err := env.Direct.Put(ctx, u.ObjectKey, strings.NewReader("x"), 1, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	return u
}

func newEnv(t *testing.T, retention time.Duration) *testenv.Env {
	return testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.UploadTimeout = time.Minute
		c.FailedUploadRetention = retention
	}})
}

// TestStuckUploadsFail: a PENDING upload whose uploader died becomes FAILED
// once it must have stopped storing, and everything under its key goes:
// the object and an incomplete multipart upload nobody recorded. A younger
// one, still possibly storing, is left alone.
func TestStuckUploadsFail(t *testing.T) {
	env := newEnv(t, 0)
	userID, _ := env.NewUser()
	ctx := context.Background()
	stuck := stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-time.Hour))
	if _, err := env.Direct.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(stuck.ObjectKey),
	}); err != nil {
		t.Fatal(err)
	}
	young := stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-30*time.Second))

	failed, expired, err := env.App.Janitor.RunOnce(ctx)
	if err != nil || failed != 1 || expired != 0 {
		t.Fatalf("RunOnce = %d failed, %d expired, %v; want 1 failed", failed, expired, err)
	}
	got := env.Client().Upload.GetX(ctx, stuck.ID)
	if got.Status != upload.StatusFAILED || got.ObjectKey != "" {
		t.Errorf("the stuck upload is %s with key %q, want FAILED naming no object", got.Status, got.ObjectKey)
	}
	if env.ObjectExists(stuck.ObjectKey) || env.IncompleteMultipartUploads() != 0 || env.PendingPurges() != 0 {
		t.Errorf("left behind: object %v, %d multipart uploads, %d purges",
			env.ObjectExists(stuck.ObjectKey), env.IncompleteMultipartUploads(), env.PendingPurges())
	}
	if u := env.Client().Upload.GetX(ctx, young.ID); u.Status != upload.StatusPENDING || !env.ObjectExists(young.ObjectKey) {
		t.Errorf("the young upload was touched: %s", u.Status)
	}
	if failed, _, _ := env.App.Janitor.RunOnce(ctx); failed != 0 {
		t.Errorf("a second pass failed %d more", failed)
	}
}

// TestJanitorsTogether: janitors of several instances settle each stuck
// upload once.
func TestJanitorsTogether(t *testing.T) {
	env := newEnv(t, 0)
	userID, _ := env.NewUser()
	for range 20 {
		stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-time.Hour))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 {
		wg.Go(func() {
			failed, _, err := env.App.Janitor.RunOnce(context.Background())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += failed
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 20 {
		t.Errorf("the janitors settled %d in all, want each of the 20 once", total)
	}
	if n := len(env.ObjectKeys()); n != 0 {
		t.Errorf("%d objects left", n)
	}
}

// TestFailedUploadsExpire: FAILED uploads older than the retention are
// deleted like a user's delete (record, object); younger ones stay, and a
// retention of 0 keeps them all.
func TestFailedUploadsExpire(t *testing.T) {
	for _, retention := range []time.Duration{time.Hour, 0} {
		env := newEnv(t, retention)
		userID, _ := env.NewUser()
		old := stored(t, env, userID, upload.StatusFAILED, time.Now().Add(-2*time.Hour))
		young := stored(t, env, userID, upload.StatusFAILED, time.Now().Add(-time.Minute))
		completed := stored(t, env, userID, upload.StatusCOMPLETED, time.Now().Add(-2*time.Hour))
		_, expired, err := env.App.Janitor.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if retention == 0 {
			if expired != 0 {
				t.Errorf("retention 0: %d expired, want none", expired)
			}
			env.AssertIntact(old, young, completed)
			continue
		}
		if expired != 1 {
			t.Errorf("%d expired, want 1", expired)
		}
		if _, err := env.Client().Upload.Get(context.Background(), old.ID); !ent.IsNotFound(err) || env.ObjectExists(old.ObjectKey) {
			t.Errorf("the old FAILED upload is still there (record: %v, object: %v)", err, env.ObjectExists(old.ObjectKey))
		}
		env.AssertIntact(young, completed)
	}
}
