package janitor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/deletionreceipt"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestJanitorTrailAndRetention: the janitor's own changes are in the audit
// trail as the janitor's, its deletes skip the trash, and it prunes events
// and answered webhook deliveries older than AUDIT_RETENTION.
func TestJanitorTrailAndRetention(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.UploadTimeout = time.Minute
		c.FailedUploadRetention = time.Hour
		c.DeleteRetention = 24 * time.Hour
		c.AuditRetention = 48 * time.Hour
	}})
	ctx := context.Background()
	userID, _ := env.NewUser()
	stuck := stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-time.Hour))
	expiring := stored(t, env, userID, upload.StatusFAILED, time.Now().Add(-2*time.Hour))

	// History: an event and a delivery three days old, and young ones.
	endpoint := env.Client().WebhookEndpoint.Create().SetOwnerID(userID).SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx)
	for i, age := range []time.Duration{72 * time.Hour, time.Hour} {
		env.Client().AuditEvent.Create().SetUploadID("upl_old").SetOwnerID(userID).SetKind(auditevent.KindCREATED).
			SetActor("key_x").SetVia(auditevent.ViaGRAPHQL).SetCreatedAt(time.Now().Add(-age)).SaveX(ctx)
		env.Client().DeletionReceipt.Create().SetUploadID(fmt.Sprintf("upl_receipt%d", i)).SetOwnerID(userID).
			SetJws("x.y.z").SetCreatedAt(time.Now().Add(-age)).SaveX(ctx)
		for _, status := range []webhookdelivery.Status{webhookdelivery.StatusDELIVERED, webhookdelivery.StatusPENDING} {
			env.Client().WebhookDelivery.Create().SetMessageID(fmt.Sprintf("msg_%d%s", i, status)).SetEndpointID(endpoint.ID).
				SetUploadID("upl_old").SetEventType("upload.created").SetPayload("{}").SetStatus(status).
				SetNextAttemptAt(time.Now().Add(time.Hour)).SetCreatedAt(time.Now().Add(-age)).SaveX(ctx)
		}
	}

	if _, _, err := env.App.Janitor.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]string{}
	for _, e := range env.Client().AuditEvent.Query().Where(auditevent.UploadIDIn(stuck.ID, expiring.ID)).AllX(ctx) {
		byKind[e.UploadID+" "+e.Kind.String()] = e.Actor + "/" + e.Via.String()
	}
	for _, want := range []string{stuck.ID + " EXPIRED", expiring.ID + " DELETED"} {
		if byKind[want] != "janitor/JANITOR" {
			t.Errorf("%s: recorded as %q, want janitor/JANITOR (trail: %v)", want, byKind[want], byKind)
		}
	}
	if env.Client().DeletedUpload.Query().Where(deletedupload.ID(expiring.ID), deletedupload.PurgeAtGT(time.Now())).ExistX(ctx) {
		t.Error("the janitor's delete went to the trash")
	}
	if env.ObjectExists(expiring.ObjectKey) {
		t.Error("the janitor's delete kept the object")
	}
	if n := env.Client().AuditEvent.Query().Where(auditevent.UploadID("upl_old")).CountX(ctx); n != 1 {
		t.Errorf("%d old-upload events left, want the young one", n)
	}
	// Deletion receipts are kept as long as the trail.
	if left := env.Client().DeletionReceipt.Query().Where(deletionreceipt.UploadIDHasPrefix("upl_receipt")).Select(deletionreceipt.FieldUploadID).StringsX(ctx); !slices.Equal(left, []string{"upl_receipt1"}) {
		t.Errorf("receipts left %v, want the young one", left)
	}
	if metrics := env.Do("GET", "/metrics", nil, nil).Body; !strings.Contains(metrics, `uploads_janitor_uploads_total{action="audit_pruned"} 1`+"\n") {
		t.Errorf("the pruned event is not counted in /metrics:\n%s", grepLines(metrics, "uploads_janitor"))
	}
	left := env.Client().WebhookDelivery.Query().Where(webhookdelivery.UploadID("upl_old")).Select(webhookdelivery.FieldMessageID).StringsX(ctx)
	slices.Sort(left)
	if want := []string{"msg_0PENDING", "msg_1DELIVERED", "msg_1PENDING"}; !slices.Equal(left, want) {
		t.Errorf("deliveries left %v, want %v (only answered ones past the retention go)", left, want)
	}
}

// TestAuditRetentionZeroKeeps: AUDIT_RETENTION=0 keeps the trail and the
// answered deliveries forever, however old.
func TestAuditRetentionZeroKeeps(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) { c.AuditRetention = 0 }})
	ctx := context.Background()
	userID, _ := env.NewUser()
	endpoint := env.Client().WebhookEndpoint.Create().SetOwnerID(userID).SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx)
	old := time.Now().Add(-365 * 24 * time.Hour)
	env.Client().AuditEvent.Create().SetUploadID("upl_old").SetOwnerID(userID).SetKind(auditevent.KindCREATED).
		SetActor("key_x").SetVia(auditevent.ViaGRAPHQL).SetCreatedAt(old).SaveX(ctx)
	env.Client().WebhookDelivery.Create().SetMessageID("msg_old").SetEndpointID(endpoint.ID).SetUploadID("upl_old").
		SetEventType("upload.created").SetPayload("{}").SetStatus(webhookdelivery.StatusDELIVERED).
		SetNextAttemptAt(old).SetCreatedAt(old).SaveX(ctx)
	if _, _, err := env.App.Janitor.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	events, deliveries := env.Client().AuditEvent.Query().CountX(ctx), env.Client().WebhookDelivery.Query().CountX(ctx)
	if events != 1 || deliveries != 1 {
		t.Errorf("with AUDIT_RETENTION=0: %d events and %d deliveries left, want both kept", events, deliveries)
	}
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
