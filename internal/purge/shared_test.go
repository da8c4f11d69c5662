package purge_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// heldS3 holds the first request of a kind at the fault proxy until
// released, and counts the removal requests that reach S3.
type heldS3 struct {
	arrived, release chan struct{}

	mu                     sync.Mutex
	holding                bool
	singles, batches, keys int // DeleteObject requests; DeleteObjects requests and their keys
}

// holdFirstRemoval holds the first DeleteObject.
func (w *world) holdFirstRemoval() *heldS3 {
	return w.holdFirst(func(r *http.Request) bool { return r.Method == http.MethodDelete })
}

// holdFirst holds the first request for which held is true.
func (w *world) holdFirst(held func(*http.Request) bool) *heldS3 {
	h := &heldS3{arrived: make(chan struct{}), release: make(chan struct{})}
	w.S3.Observe(func(r *http.Request) {
		h.mu.Lock()
		first := !h.holding && held(r)
		h.holding = h.holding || first
		h.mu.Unlock()
		if first {
			close(h.arrived)
			<-h.release
		}
		switch {
		case r.Method == http.MethodDelete:
			h.mu.Lock()
			h.singles++
			h.mu.Unlock()
		case r.Method == http.MethodPost && r.URL.Query().Has("delete"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			h.mu.Lock()
			h.batches++
			h.keys += strings.Count(string(body), "<Key>")
			h.mu.Unlock()
		}
	})
	w.t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	return h
}

func (h *heldS3) counts() (singles, batches, keys int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.singles, h.batches, h.keys
}

// knowBuckets has the purger remove an object from each bucket, alone, so
// that it knows they are not versioned: a removal is shared only then.
func (w *world) knowBuckets(buckets ...string) {
	w.t.Helper()
	ctx := context.Background()
	for _, bucket := range buckets {
		key := "first-of-" + bucket
		if _, err := w.Direct.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			w.t.Fatal(err)
		}
		if n := w.purger().AttemptInline(ctx, w.queue(bucket, time.Now().Add(time.Hour), key)...); n != 1 {
			w.t.Fatalf("removing %s from %s: purged %d", key, bucket, n)
		}
	}
}

// attemptTogether runs the inline attempt of each job in a goroutine of its
// own, as the deletes a group commit answers at once do: the first one's
// request is held at S3 until the others wait for it; then it is let go.
// It returns how many objects each attempt purged.
func (w *world) attemptTogether(ctx context.Context, h *heldS3, jobs []*ent.ObjectPurge) []int {
	w.t.Helper()
	purged := make([]int, len(jobs))
	var attempts sync.WaitGroup
	attempt := func(i int) { attempts.Go(func() { purged[i] = w.purger().AttemptInline(ctx, jobs[i]) }) }
	attempt(0)
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		w.t.Fatal("the first removal never reached S3")
	}
	for i := 1; i < len(jobs); i++ {
		attempt(i)
	}
	w.Eventually(10*time.Second, "the other removals waiting", func() bool {
		singles, _, _ := h.counts()
		return w.purger().SharedWaiting() == len(jobs)-1 || singles > 1
	})
	if singles, _, _ := h.counts(); singles > 1 {
		w.t.Errorf("%d DeleteObject requests while the first was under way; want the others to wait for it", singles-1)
	}
	close(h.release)
	attempts.Wait()
	return purged
}

// TestInlineRemovalsShareARequest: the objects of deletes answered together
// reach S3 in one request, not one each. While one removal is under way,
// those that arrive wait for it and then go together in one DeleteObjects;
// each caller's object is gone and its purge done.
func TestInlineRemovalsShareARequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	keys := w.storeObjects(5)
	jobs := w.scheduled(keys...)
	w.knowBuckets(w.Bucket)
	h := w.holdFirstRemoval()

	for i, n := range w.attemptTogether(context.Background(), h, jobs) {
		if n != 1 {
			t.Errorf("attempt %d purged %d, want 1", i, n)
		}
	}
	if singles, batches, batched := h.counts(); singles != 1 || batches != 1 || batched != 4 {
		t.Errorf("S3 saw %d DeleteObject and %d DeleteObjects for %d keys; want the first alone, then the other 4 in one request",
			singles, batches, batched)
	}
	w.allPurged(keys)
}

// TestSharedRemovalFailures: in a shared request, a key S3 could not delete
// fails only its own purge, and a request S3 refused fails each of its
// purges; a failed purge stays for the background loop, after the backoff
// of a first failure. The others are done.
func TestSharedRemovalFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		refuse func(w *world, keys []string)
		failed []int // of the 5 attempts (the first goes alone)
	}{
		{"one key refused", func(w *world, keys []string) {
			w.S3.FailKeys(func(key string) bool { return key == keys[2] })
		}, []int{2}},
		{"the request refused", func(w *world, _ []string) {
			w.S3.FailWhen(func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("delete") })
		}, []int{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
			keys := w.storeObjects(5)
			jobs := w.scheduled(keys...)
			w.knowBuckets(w.Bucket)
			tc.refuse(w, keys)
			h := w.holdFirstRemoval()

			purged := w.attemptTogether(context.Background(), h, jobs)
			if _, batches, _ := h.counts(); batches != 1 {
				t.Fatalf("%d DeleteObjects requests, want the 4 waiting removals in one", batches)
			}
			for i, job := range jobs {
				failed := false
				for _, f := range tc.failed {
					failed = failed || f == i
				}
				row := w.row(job.ID)
				switch {
				case failed && (purged[i] != 0 || row == nil):
					t.Errorf("attempt %d: purged %d, row kept %v; want its failure left to the loop", i, purged[i], row != nil)
				case failed && (row.Attempts != 1 || row.LastError == "" || time.Until(row.NextAttemptAt) < 0):
					t.Errorf("attempt %d: attempts %d, last error %q, due in %s; want the failure recorded, due after a backoff",
						i, row.Attempts, row.LastError, time.Until(row.NextAttemptAt))
				case !failed && (purged[i] != 1 || row != nil):
					t.Errorf("attempt %d: purged %d, row kept %v; want it done", i, purged[i], row != nil)
				}
			}
		})
	}
}

// TestSharedRemovalsAcrossBuckets: removals of two buckets that wait
// together each go to their own bucket; and once they are over, the next
// removal goes out at once, alone, as the first did.
func TestSharedRemovalsAcrossBuckets(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeInlineTimeout = time.Second })
	ctx := context.Background()
	other := w.Bucket + "-other"
	if _, err := w.Direct.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	keys := w.storeObjects(4)
	elsewhere := []string{"elsewhere-1", "elsewhere-2"}
	for _, key := range elsewhere {
		if _, err := w.Direct.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(other), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	jobs := append(w.scheduled(keys[:3]...), w.queue(other, time.Now().Add(time.Hour), elsewhere...)...)
	w.knowBuckets(w.Bucket, other)
	h := w.holdFirstRemoval()

	for i, n := range w.attemptTogether(ctx, h, jobs) {
		if n != 1 {
			t.Errorf("attempt %d purged %d, want 1", i, n)
		}
	}
	for _, key := range elsewhere {
		if _, err := w.Direct.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(other), Key: aws.String(key)}); err == nil {
			t.Errorf("object %s left in bucket %s", key, other)
		}
	}
	if n := w.purger().AttemptInline(ctx, w.scheduled(keys[3])...); n != 1 {
		t.Errorf("the next removal, once the shared ones are over, purged %d, want 1", n)
	}
	w.allPurged(keys)
}

// TestVersionedRemovalsGoAlone: on a versioned bucket each removal lists its
// key's versions first, so removals are not shared: while one is under way,
// the others go to S3 on their own, side by side, as they always did.
func TestVersionedRemovalsGoAlone(t *testing.T) {
	t.Parallel()
	w := &world{Env: testenv.NewVersioned(t, testenv.Options{NoPurgeLoop: true}), t: t}
	keys := w.storeObjects(4)
	jobs := w.scheduled(keys...)
	w.knowBuckets(w.Bucket)
	ctx := context.Background()
	h := w.holdFirst(func(r *http.Request) bool { return r.Method == http.MethodGet && r.URL.Query().Has("versions") })

	var held sync.WaitGroup
	held.Go(func() {
		if n := w.purger().AttemptInline(ctx, jobs[0]); n != 1 {
			t.Errorf("the held removal purged %d, want 1", n)
		}
	})
	<-h.arrived
	var others sync.WaitGroup
	finished := make(chan struct{}, len(jobs))
	for _, job := range jobs[1:] {
		others.Go(func() {
			if n := w.purger().AttemptInline(ctx, job); n != 1 {
				t.Errorf("a removal beside the held one purged %d, want 1", n)
			}
			finished <- struct{}{}
		})
	}
	w.Eventually(10*time.Second, "the other removals done, or waiting", func() bool {
		return len(finished) == len(jobs)-1 || w.purger().SharedWaiting() > 0
	})
	if waiting := w.purger().SharedWaiting(); waiting > 0 {
		t.Errorf("%d removals wait for the one under way on a versioned bucket; want them on their own", waiting)
	}
	close(h.release)
	others.Wait()
	held.Wait()
	w.allPurged(keys)
}
