package purge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// world is one test's service (its own database, and its own bucket on a
// real S3-speaking server behind the fault proxy) with no purge loop
// running: the test drives the purger itself.
type world struct {
	*testenv.Env
	t *testing.T
}

func newWorld(t *testing.T, configure func(*config.Config)) *world {
	t.Helper()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: configure})
	return &world{Env: env, t: t}
}

// in returns the same world, its helpers reporting to t (a subtest).
func (w *world) in(t *testing.T) *world { return &world{Env: w.For(t), t: t} }

// purger is the service's purger.
func (w *world) purger() *purge.Purger { return w.App.Purger }

// storeObjects puts n small objects into the bucket and returns their keys.
func (w *world) storeObjects(n int) []string {
	w.t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("purge-test/%s/%03d", w.t.Name(), i)
		if err := w.Direct.Put(context.Background(), keys[i], strings.NewReader("x"), 1, "text/plain", nil); err != nil {
			w.t.Fatal(err)
		}
	}
	return keys
}

// due queues a purge for each key in the service's bucket, due since a
// minute (a backlog, as an outage leaves), the first key's the oldest.
func (w *world) due(keys ...string) []*ent.ObjectPurge {
	w.t.Helper()
	return w.queue(w.Bucket, time.Now().Add(-time.Minute), keys...)
}

// queue queues a purge for each key in bucket, the first due at dueAt and
// each next a millisecond later.
func (w *world) queue(bucket string, dueAt time.Time, keys ...string) []*ent.ObjectPurge {
	w.t.Helper()
	creates := make([]*ent.ObjectPurgeCreate, len(keys))
	for i, key := range keys {
		creates[i] = w.Client().ObjectPurge.Create().
			SetBucket(bucket).
			SetObjectKey(key).
			SetUploadID(fmt.Sprintf("upl_test%04d", i)).
			SetNextAttemptAt(dueAt.Add(time.Duration(i) * time.Millisecond))
	}
	jobs, err := w.Client().ObjectPurge.CreateBulk(creates...).Save(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return jobs
}

// row reads a purge back; nil once it is done (its row deleted).
func (w *world) row(id int) *ent.ObjectPurge {
	w.t.Helper()
	flush(w.t, w.purger())
	job, err := w.Client().ObjectPurge.Get(context.Background(), id)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return job
}

// pending counts the purges not done yet, due or not.
func (w *world) pending() int {
	w.t.Helper()
	flush(w.t, w.purger())
	n, err := w.Client().ObjectPurge.Query().Count(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// allPurged fails the test if an object of keys is left in the bucket or a
// purge is still pending.
func (w *world) allPurged(keys []string) {
	w.t.Helper()
	for _, key := range keys {
		if w.ObjectExists(key) {
			w.t.Errorf("object %s left in the bucket", key)
		}
	}
	if pending := w.pending(); pending != 0 {
		w.t.Errorf("%d purges pending, want all done", pending)
	}
}

// flush waits for the rows of the purges p finished to be deleted, and
// fails the test if that never ends.
func flush(t testing.TB, p *purge.Purger) {
	t.Helper()
	flushed := make(chan struct{})
	go func() { p.Flush(); close(flushed) }()
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("Flush did not return: the rows of finished purges are not all deleted")
	}
}

// scheduled schedules the purges of completed uploads of keys, as a delete
// does, and returns them for the inline attempt.
func (w *world) scheduled(keys ...string) []*ent.ObjectPurge {
	w.t.Helper()
	uploads := make([]*ent.Upload, len(keys))
	for i, key := range keys {
		uploads[i] = &ent.Upload{ID: "upl_" + key, Bucket: w.Bucket, ObjectKey: key, Status: upload.StatusCOMPLETED}
	}
	return w.schedule(w.scheduleFor(time.Time{}), uploads...)
}

type scheduler func(context.Context, *ent.Tx, ...*ent.Upload) ([]*ent.ObjectPurge, error)

// scheduleFor is ScheduleFor keeping the objects until keepUntil (zero:
// purge now), as a scheduler.
func (w *world) scheduleFor(keepUntil time.Time) scheduler {
	return func(ctx context.Context, tx *ent.Tx, uploads ...*ent.Upload) ([]*ent.ObjectPurge, error) {
		return w.purger().ScheduleFor(ctx, tx, keepUntil, purge.Request{}, uploads...)
	}
}

// schedule runs a scheduler (ScheduleFor, ScheduleStopped) in a
// transaction of its own, as a delete does in its.
func (w *world) schedule(f scheduler, uploads ...*ent.Upload) []*ent.ObjectPurge {
	w.t.Helper()
	var jobs []*ent.ObjectPurge
	err := database.WithTx(context.Background(), w.Client(), func(tx *ent.Tx) (err error) {
		jobs, err = f(context.Background(), tx, uploads...)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return jobs
}

func uploadIDs(jobs []*ent.ObjectPurge) []string {
	ids := make([]string, len(jobs))
	for i, job := range jobs {
		ids[i] = job.UploadID
	}
	return ids
}

// startMultipart begins a multipart upload of key, straight on S3, and
// returns its id: parts that cost storage until aborted.
func (w *world) startMultipart(key string) string {
	w.t.Helper()
	out, err := w.Direct.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(w.Bucket), Key: aws.String(key),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.UploadId)
}

// s3Traffic counts what reaches S3 through the proxy from now on.
type s3Traffic struct {
	mu            sync.Mutex
	paths         []string // every request's path (bucket and key)
	batches       int      // DeleteObjects requests
	keysInBatches int
}

func (w *world) watchS3() *s3Traffic {
	traffic := &s3Traffic{}
	w.S3.Observe(func(r *http.Request) {
		traffic.mu.Lock()
		defer traffic.mu.Unlock()
		traffic.paths = append(traffic.paths, r.URL.Path)
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			traffic.batches++
			traffic.keysInBatches += strings.Count(string(body), "<Key>")
		}
	})
	return traffic
}

// asked reports whether any request named key.
func (s *s3Traffic) asked(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.paths {
		if strings.HasSuffix(p, "/"+key) {
			return true
		}
	}
	return false
}

func (s *s3Traffic) deleteObjects() (requests, keys int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches, s.keysInBatches
}

// fakeObjects is an ObjectDiscarder that removes nothing and records what
// it was asked, for tests about the purger's own decisions (which purges,
// how many calls), not about S3. fail, when set, decides each key's fate.
type fakeObjects struct {
	mu        sync.Mutex
	discarded map[string]int // key -> times asked to remove it
	fail      func(key string) error
}

func newFakeObjects() *fakeObjects { return &fakeObjects{discarded: map[string]int{}} }

func (f *fakeObjects) remove(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discarded[key]++
	if f.fail != nil {
		return f.fail(key)
	}
	return nil
}

func (f *fakeObjects) Discard(_ context.Context, _, key, _ string) error { return f.remove(key) }

func (f *fakeObjects) Abort(context.Context, string, string, string) error { return nil }

func (f *fakeObjects) AbortAll(context.Context, string, string) error { return nil }

func (f *fakeObjects) DeleteKeys(_ context.Context, _ string, keys []string) map[string]error {
	failed := map[string]error{}
	for _, key := range keys {
		if err := f.remove(key); err != nil {
			failed[key] = err
		}
	}
	return failed
}

func (f *fakeObjects) PlainDeletes(string) bool { return true }

// times reports how often key was asked to be removed.
func (f *fakeObjects) times(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.discarded[key]
}

// fakePurger is a purger over the world's database that removes objects
// through objects, logging into logs.
func (w *world) fakePurger(objects purge.ObjectDiscarder, logs io.Writer, opts purge.Options) *purge.Purger {
	return purge.New(w.Client(), objects, newLogger(logs), opts)
}

func newLogger(logs io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(logs, nil)) }

// notLogged fails the test if the service logged any of messages: a
// warning or error where nothing went wrong.
func (w *world) notLogged(messages ...string) {
	w.t.Helper()
	logs := w.Logs.String()
	for _, msg := range messages {
		if strings.Contains(logs, msg) {
			w.t.Errorf("logged %q although nothing failed:\n%s", msg, logs)
		}
	}
}

// within fails the test unless at lies in [from, to], give or take the
// microsecond PostgreSQL keeps of a time (TEST_DATABASE_URL).
func within(t *testing.T, what string, at, from, to time.Time) {
	t.Helper()
	if at.Before(from.Add(-time.Microsecond)) || at.After(to.Add(time.Microsecond)) {
		t.Errorf("%s at %s, want between %s and %s (%s to %s from now)", what,
			at.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano),
			time.Until(from).Round(time.Millisecond), time.Until(to).Round(time.Millisecond))
	}
}
