//go:build soak

package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestJobKilled starts a deletion job over a user's 20,000 uploads (a
// quarter of them with objects) through GraphQL on instance A, the only
// one running when the job is claimed, then starts instance B on the same
// database and bucket and SIGKILLs A in the middle of the job. B must take
// the job over once A's lease has ended, and not before, and finish it:
// SUCCEEDED, deletedCount == matchedCount == 20,000, no record, object or
// pending purge left, and exactly one "deleted" audit event per upload
// (nothing deleted or counted twice). On SQLite, or on PostgreSQL when
// TEST_DATABASE_URL is set; on the S3 of TEST_S3_ENDPOINT, or on an
// embedded S3 server both instances share.
func TestJobKilled(t *testing.T) {
	t.Parallel()
	const uploads, withObjects = 20000, 5000
	ctx := context.Background()
	s3Env, store := sharedBucket(t)
	databaseURL, dbName := testenv.PostgresSchema(t), "PostgreSQL"
	if databaseURL == "" {
		databaseURL, dbName = database.SQLiteURL(filepath.Join(t.TempDir(), "uploads.db")), "SQLite"
	}
	settings := append(s3Env, "DATABASE_URL="+databaseURL, "PURGE_POLL_INTERVAL=200ms", "PURGE_MAX_BACKOFF=2s", "RATE_LIMIT=0")
	a, b := newServer(t, settings...), newServer(t, settings...)
	a.start() // creates the schema
	client, err := database.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	userID, key := a.newUser("jobs@example.com")
	seedStart := time.Now()
	seeded := seedRecords(t, client, store, userID, uploads, withObjects)
	t.Logf("seeded %d uploads (%d with objects) in %s", len(seeded), withObjects, time.Since(seedStart).Round(time.Millisecond))

	// A is the only instance: it claims the job.
	var started struct {
		StartDeletionJob jobState `json:"startDeletionJob"`
	}
	if err := graphQL(a.url(), key, `mutation { startDeletionJob(where: {}) { id status matchedCount deletedCount } }`, nil, &started); err != nil {
		t.Fatal(err)
	}
	job := started.StartDeletionJob
	began := time.Now()
	if job.MatchedCount != uploads {
		t.Fatalf("started: %+v, want matchedCount %d", job, uploads)
	}
	job = pollJob(t, a, key, job.ID, time.Minute, func(j jobState) bool { return j.Status != "QUEUED" })
	if job.Status != "RUNNING" {
		t.Fatalf("the job is %+v before A was killed: seed more uploads", job)
	}
	// B comes up beside it; A is killed once the job has made progress.
	b.start()
	job = pollJob(t, b, key, job.ID, time.Minute, func(j jobState) bool { return j.DeletedCount > 0 || j.Status != "RUNNING" })
	a.kill()
	killedAt := time.Now()
	row := client.DeletionJob.GetX(ctx, job.ID) // A can no longer renew its lease: this is where it ends
	if row.Status != "RUNNING" || row.Attempts != 1 {
		t.Fatalf("when A was killed the job was %s after %d claims (deleted %d): want RUNNING, claimed by A alone",
			row.Status, row.Attempts, row.DeletedCount)
	}
	deletedByA, leaseEnd := row.DeletedCount, row.NextAttemptAt

	// B takes it over after the lease and runs it to the end.
	var resumedAt time.Time
	last := job
	// Deadlines, generous: B looks for due jobs every second, and the
	// job's 17,000-odd uploads take seconds.
	claimBy, finishBy := leaseEnd.Add(30*time.Second), leaseEnd.Add(90*time.Second)
	for !finished(last) {
		if resumedAt.IsZero() && time.Now().After(claimBy) {
			t.Fatalf("nobody took the job over within 30 s after A's lease ended: %+v", last)
		}
		if time.Now().After(finishBy) {
			t.Fatalf("the job did not finish within 90 s after A's lease ended: %+v", last)
		}
		time.Sleep(100 * time.Millisecond)
		if resumedAt.IsZero() && client.DeletionJob.GetX(ctx, job.ID).Attempts > 1 {
			resumedAt = time.Now()
		}
		var got struct{ Node *jobState }
		if err := graphQL(b.url(), key, `query($id: ID!) { node(id: $id) { ... on DeletionJob { id status matchedCount deletedCount failedCount error } } }`,
			map[string]any{"id": job.ID}, &got); err != nil || got.Node == nil {
			t.Fatalf("node(id: %s) on B: %v, %+v", job.ID, err, got.Node)
		}
		if got.Node.DeletedCount < last.DeletedCount || got.Node.DeletedCount > uploads {
			t.Errorf("deletedCount went from %d to %d (matched %d)", last.DeletedCount, got.Node.DeletedCount, uploads)
		}
		last = *got.Node
	}
	finishedAt := time.Now()
	final := client.DeletionJob.GetX(ctx, job.ID)
	if resumedAt.IsZero() && final.Attempts > 1 { // B finished the job between two polls
		resumedAt = finishedAt
	}

	drainStart := time.Now()
	for client.ObjectPurge.Query().CountX(ctx) > 0 && time.Since(drainStart) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	st := bucketState(t, client, store)
	deletedEvents := client.AuditEvent.Query().
		Where(auditevent.OwnerID(userID), auditevent.KindEQ(auditevent.KindDELETED)).
		Select(auditevent.FieldUploadID).StringsX(ctx)
	eventsPer := map[string]int{}
	for _, id := range deletedEvents {
		eventsPer[id]++
	}
	var notOnce []string
	for _, id := range seeded {
		if eventsPer[id] != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%s: %d events", id, eventsPer[id]))
		}
	}
	recordsLeft := client.Upload.Query().Where(upload.OwnerID(userID)).CountX(ctx)
	orphans := st.orphans()
	byB := final.DeletedCount - deletedByA
	t.Logf("FIGURE deletion job SIGKILLed (%s, %s): a job over %d uploads (%d with objects) on instance A, A SIGKILLed after "+
		"deleting %d in %s; A's lease ended %s after the kill, B claimed the job %s after the kill (%s after the lease ended; %d claims in all) "+
		"and deleted the other %d in %s (%.0f uploads/s); the job %s in %s; afterwards %d records, %d objects (%d orphaned), "+
		"%d pending purges (drained in %s), %d deleted events for %d uploads, %d uploads without exactly one",
		dbName, s3Name(), uploads, withObjects, deletedByA, killedAt.Sub(began).Round(time.Millisecond),
		leaseEnd.Sub(killedAt).Round(time.Millisecond), resumedAt.Sub(killedAt).Round(time.Millisecond),
		resumedAt.Sub(leaseEnd).Round(time.Millisecond), final.Attempts, byB, finishedAt.Sub(resumedAt).Round(time.Millisecond),
		float64(byB)/finishedAt.Sub(resumedAt).Seconds(), final.Status, finishedAt.Sub(began).Round(time.Millisecond),
		recordsLeft, len(st.objects), len(orphans), len(st.purges), time.Since(drainStart).Round(time.Millisecond),
		len(deletedEvents), uploads, len(notOnce))
	if last.Status != "SUCCEEDED" || last.MatchedCount != uploads || last.DeletedCount != uploads || last.FailedCount != 0 || last.Error != "" {
		t.Errorf("the job ended %+v, want SUCCEEDED with %d matched and deleted", last, uploads)
	}
	if resumedAt.IsZero() || resumedAt.Before(leaseEnd) {
		t.Errorf("B claimed the job at %s, A's lease ended at %s: the job must be taken over once, after the lease", resumedAt, leaseEnd)
	}
	if recordsLeft > 0 || len(st.objects) > 0 || len(orphans) > 0 || len(st.purges) > 0 {
		t.Errorf("left behind: %d records, %d objects (orphaned: %v), %d pending purges", recordsLeft, len(st.objects), first(orphans), len(st.purges))
	}
	if len(deletedEvents) != uploads || len(notOnce) > 0 {
		t.Errorf("%d deleted events for %d uploads; not exactly one: %v", len(deletedEvents), uploads, first(notOnce))
	}
}

// jobState is a DeletionJob as GraphQL answers it.
type jobState struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	MatchedCount int    `json:"matchedCount"`
	DeletedCount int    `json:"deletedCount"`
	FailedCount  int    `json:"failedCount"`
	Error        string `json:"error"`
}

func finished(j jobState) bool {
	return j.Status == "SUCCEEDED" || j.Status == "FAILED" || j.Status == "CANCELED"
}

// pollJob asks s for the job until until holds, for at most within.
func pollJob(t *testing.T, s *server, apiKey, jobID string, within time.Duration, until func(jobState) bool) jobState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var got struct{ Node *jobState }
		if err := graphQL(s.url(), apiKey, `query($id: ID!) { node(id: $id) { ... on DeletionJob { id status matchedCount deletedCount failedCount error } } }`,
			map[string]any{"id": jobID}, &got); err != nil || got.Node == nil {
			t.Fatalf("node(id: %s): %v, %+v", jobID, err, got.Node)
		}
		if until(*got.Node) {
			return *got.Node
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is still %+v after %s", *got.Node, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sharedBucket is one bucket for several server processes: a fresh one on
// TEST_S3_ENDPOINT, or else on an embedded S3 server run by the test (each
// process's own embedded server would hold its own objects).
func sharedBucket(t *testing.T) ([]string, *objectstore.Store) {
	t.Helper()
	if endpoint := os.Getenv("TEST_S3_ENDPOINT"); endpoint != "" {
		env := s3Settings(t)
		for _, kv := range env {
			if bucket, ok := strings.CutPrefix(kv, "S3_BUCKET="); ok {
				return env, s3Store(t, endpoint, bucket)
			}
		}
	}
	srv, err := embeds3.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	s3Client, err := objectstore.NewClient(context.Background(), objectstore.Config{
		Region: "us-east-1", Endpoint: srv.URL, ForcePathStyle: true,
		Credentials: objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	store := objectstore.New(s3Client, "shared", objectstore.Options{})
	if err := store.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return []string{
		"S3_BUCKET=shared", "S3_ENDPOINT=" + srv.URL, "S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + embeds3.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + embeds3.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}, store
}

func s3Name() string {
	if os.Getenv("TEST_S3_ENDPOINT") != "" {
		return "S3 at TEST_S3_ENDPOINT"
	}
	return "embedded S3"
}

// seedRecords writes n upload records of userID straight into the
// database, the first withObjects of them COMPLETED with an object in the
// bucket, the others FAILED with none, and returns their ids.
func seedRecords(t *testing.T, client *ent.Client, store *objectstore.Store, userID string, n, withObjects int) []string {
	t.Helper()
	ctx := context.Background()
	creates := make([]*ent.UploadCreate, n)
	uploadIDs := make([]string, n)
	const writers = 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				uploadIDs[i] = ids.NewUpload()
				c := client.Upload.Create().SetID(uploadIDs[i]).SetOwnerID(userID).SetFilename(fmt.Sprintf("f%05d.txt", i)).
					SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED)
				if i < withObjects {
					key := "uploads/" + userID + "/" + uploadIDs[i]
					if err := store.Put(ctx, key, strings.NewReader("x"), 1, "text/plain", nil); err != nil {
						t.Error(err)
						return
					}
					c.SetSize(1).SetStatus(upload.StatusCOMPLETED).SetBucket(store.Bucket()).SetObjectKey(key)
				}
				creates[i] = c
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for part := range slices.Chunk(creates, 1000) {
		client.Upload.CreateBulk(part...).SaveX(ctx)
	}
	return uploadIDs
}

// bucketState reads the records and pending purges of the database, and
// the objects of the bucket.
func bucketState(t *testing.T, client *ent.Client, store *objectstore.Store) state {
	t.Helper()
	ctx := context.Background()
	st := state{records: map[string]string{}, purges: map[string]bool{}, objects: map[string]bool{}}
	for _, u := range client.Upload.Query().AllX(ctx) {
		st.records[u.ID] = u.ObjectKey
	}
	for _, p := range client.ObjectPurge.Query().AllX(ctx) {
		st.purges[p.ObjectKey] = true
	}
	p := s3.NewListObjectsV2Paginator(store.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(store.Bucket())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			st.objects[aws.ToString(o.Key)] = true
		}
	}
	return st
}
