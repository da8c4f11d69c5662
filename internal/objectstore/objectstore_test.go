package objectstore_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/testenv"
)

func noMultipart(t *testing.T) func(context.Context, string) error {
	return func(context.Context, string) error {
		t.Error("a small object was sent as a multipart upload")
		return nil
	}
}

// TestRoundTrip runs the single-request calls the service makes against the
// real S3 server of the test run (the embedded one, or TEST_S3_ENDPOINT).
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	store := env.App.Store
	ctx := context.Background()
	if err := store.Put(ctx, "dir/a.txt", bytes.NewReader([]byte("hello")), 5, "text/plain", noMultipart(t)); err != nil {
		t.Fatal(err)
	}
	if !env.ObjectExists("dir/a.txt") {
		t.Fatal("object not stored")
	}
	if err := store.Discard(ctx, env.Bucket, "dir/a.txt", ""); err != nil {
		t.Fatal(err)
	}
	if env.ObjectExists("dir/a.txt") {
		t.Fatal("object not deleted")
	}
	if err := store.Discard(ctx, env.Bucket, "dir/a.txt", ""); err != nil {
		t.Errorf("discarding an absent object must succeed (purges are retried): %v", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Errorf("EnsureBucket on an existing bucket: %v", err)
	}
}

const partSize = 5 << 20 // S3's smallest part size

func multipartEnv(t *testing.T) *testenv.Env {
	return testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.S3PartSize = partSize
		c.MaxUploadSize = 4 * partSize
	}})
}

// TestMultipart stores an object in parts, and aborts one that failed
// half-way so that no invisible parts are left.
func TestMultipart(t *testing.T) {
	t.Parallel()
	env := multipartEnv(t)
	store := env.App.Store
	ctx := context.Background()
	content := bytes.Repeat([]byte("0123456789abcdef"), (2*partSize+1000)/16)

	var started []string
	record := func(_ context.Context, id string) error { started = append(started, id); return nil }
	if err := store.Put(ctx, "big", bytes.NewReader(content), int64(len(content)), "application/octet-stream", record); err != nil {
		t.Fatal(err)
	}
	if len(started) != 1 {
		t.Fatalf("multipart upload started %d times, want 1", len(started))
	}
	head, err := env.Direct.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String("big")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len(content)) {
		t.Fatalf("stored object: %v, %v", head, err)
	}

	// The second part fails: the multipart upload stays incomplete.
	env.S3.FailWhen(func(r *http.Request) bool { return r.URL.Query().Get("partNumber") == "2" })
	started = nil
	if err := store.Put(ctx, "broken", bytes.NewReader(content), int64(len(content)), "application/octet-stream", record); err == nil {
		t.Fatal("Put succeeded although a part failed")
	}
	env.S3.FailWhen(nil)
	if len(started) != 1 || env.IncompleteMultipartUploads() != 1 {
		t.Fatalf("want one incomplete multipart upload of the failed object")
	}
	if err := store.Discard(ctx, env.Bucket, "broken", started[0]); err != nil {
		t.Fatal(err)
	}
	if n := env.IncompleteMultipartUploads(); n != 0 {
		t.Errorf("%d incomplete multipart uploads left after Discard", n)
	}
	if err := store.Discard(ctx, env.Bucket, "broken", started[0]); err != nil {
		t.Errorf("discarding twice must succeed: %v", err)
	}
}

// TestVersionedBucket: by default a delete removes every version of the
// object, not only adds a delete marker; S3_DELETE_MARKER_ONLY keeps them.
// It needs a server with versioning (.ci/run sets TEST_S3_VERSIONING=1 for
// versitygw with a versioning directory and for MinIO); the embedded server
// has none.
func TestVersionedBucket(t *testing.T) {
	t.Parallel()
	for _, markerOnly := range []bool{false, true} {
		env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.S3DeleteMarkerOnly = markerOnly }})
		ctx := context.Background()
		client := env.Direct.Client()
		_, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(env.Bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			if os.Getenv("TEST_S3_VERSIONING") == "1" {
				t.Fatalf("enable versioning: %v", err)
			}
			t.Skipf("this S3 server has no versioning (%v); .ci/run runs this test on versitygw and MinIO", err)
		}
		for _, body := range []string{"v1", "v2", "v3"} {
			if err := env.App.Store.Put(ctx, "doc", strings.NewReader(body), 2, "text/plain", noMultipart(t)); err != nil {
				t.Fatal(err)
			}
		}
		if n := versions(t, env, "doc"); n != 3 {
			t.Fatalf("%d versions stored, want 3", n)
		}
		if err := env.App.Store.Discard(ctx, env.Bucket, "doc", ""); err != nil {
			t.Fatal(err)
		}
		if env.ObjectExists("doc") {
			t.Error("object still readable after Discard")
		}
		n := versions(t, env, "doc")
		switch {
		case !markerOnly && n != 0:
			t.Errorf("%d versions or markers left; a delete must remove them all", n)
		case markerOnly && n != 4:
			t.Errorf("marker-only delete left %d versions and markers, want 3 versions + 1 marker", n)
		}
	}
}

func versions(t *testing.T, env *testenv.Env, key string) int {
	t.Helper()
	out, err := env.Direct.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(env.Bucket), Prefix: aws.String(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// TestNoChecksumTrailers: since 2025 the SDK by default streams uploads as
// aws-chunked with CRC32 trailers, which several S3-compatible servers
// reject. The store must send plain, signed payloads that every server
// accepts.
func TestNoChecksumTrailers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	var mu sync.Mutex
	var puts []http.Header
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			puts = append(puts, r.Header.Clone())
			mu.Unlock()
		}
	})
	if err := env.App.Store.Put(context.Background(), "k", strings.NewReader("payload"), 7, "text/plain", noMultipart(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(puts) != 1 {
		t.Fatalf("saw %d PUTs, want 1", len(puts))
	}
	h := puts[0]
	if h.Get("X-Amz-Trailer") != "" || strings.Contains(h.Get("Content-Encoding"), "aws-chunked") ||
		strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		t.Errorf("PUT used a streaming checksum encoding: %v", h)
	}
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
			t.Errorf("PUT carries an optional checksum header %s", name)
		}
	}
}

// TestNoSharedRetryQuota: a burst of failing requests (one caller's, say)
// does not use up retries for everyone else. The SDK's default retryer
// shares a token bucket across the process; once it is empty, every request
// fails on its first error with "retry quota exceeded".
func TestNoSharedRetryQuota(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	store := env.App.Store
	ctx := context.Background()
	env.S3.FailWhen(func(*http.Request) bool { return true })
	var wg sync.WaitGroup
	for i := range 60 { // 60 × 2 retries × 5 tokens: more than the SDK's quota of 500
		wg.Go(func() {
			key := "burst/" + strings.Repeat("x", i+1)
			if err := store.Put(ctx, key, bytes.NewReader([]byte("x")), 1, "text/plain", noMultipart(t)); err == nil {
				t.Error("a Put succeeded while S3 answered 503")
			}
		})
	}
	wg.Wait()

	// Now S3 fails each request's first attempt only: a retry succeeds.
	env.S3.FailWhen(func(r *http.Request) bool { return strings.HasPrefix(r.Header.Get("amz-sdk-request"), "attempt=1;") })
	if err := store.Put(ctx, "after/burst", bytes.NewReader([]byte("x")), 1, "text/plain", noMultipart(t)); err != nil {
		t.Fatalf("a Put after someone else's failures got no retry: %v", err)
	}
}

// TestRemovalFailures: a removal S3 refuses is an error, never "already
// gone" (the purge would end with the object or its parts still stored),
// and it is retried with backoff except through Once (the purger's view:
// a delete's inline attempt, whose caller is waiting, and the retry loop).
func TestRemovalFailures(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	store := env.App.Store
	ctx := context.Background()
	if err := store.Put(ctx, "kept.txt", bytes.NewReader([]byte("x")), 1, "text/plain", noMultipart(t)); err != nil {
		t.Fatal(err)
	}
	env.S3.SetMode(faultproxy.InternalError)
	for _, tc := range []struct {
		name     string
		store    *objectstore.Store
		attempts int64
	}{
		{"retrying", store, 3}, // the SDK's standard retryer: three attempts
		{"once", store.Once(), 1},
	} {
		for what, remove := range map[string]func(context.Context) error{
			"Delete": func(ctx context.Context) error { return tc.store.Delete(ctx, env.Bucket, "kept.txt") },
			"Abort":  func(ctx context.Context) error { return tc.store.Abort(ctx, env.Bucket, "kept.txt", "some-upload-id") },
			"Discard": func(ctx context.Context) error {
				return tc.store.Discard(ctx, env.Bucket, "kept.txt", "some-upload-id")
			},
		} {
			before := env.S3.Requests()
			err := remove(ctx)
			if n := env.S3.Requests() - before; err == nil || n != tc.attempts {
				t.Errorf("%s, %s while S3 answers 500: error %v after %d requests; want an error after %d", tc.name, what, err, n, tc.attempts)
			}
		}
	}
	env.S3.SetMode(faultproxy.Pass)
	if !env.ObjectExists("kept.txt") {
		t.Error("the object went while S3 refused")
	}
}

// TestDeleteKeysInRequestsSideBySide: a set of keys larger than one
// request's share goes in several DeleteObjects requests, none over 250
// keys, sent side by side; every object goes, and a key S3 reports it
// could not delete is reported, and only that one, whichever request
// carried it.
func TestDeleteKeysInRequestsSideBySide(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	store := env.App.Store
	ctx := context.Background()
	const n = 700
	keys := make([]string, n)
	var wg sync.WaitGroup
	puts := make(chan struct{}, 16)
	for i := range keys {
		keys[i] = "many/" + strconv.Itoa(i)
		puts <- struct{}{}
		wg.Go(func() {
			defer func() { <-puts }()
			if err := store.Put(ctx, keys[i], bytes.NewReader([]byte("x")), 1, "text/plain", noMultipart(t)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var mu sync.Mutex
	var perRequest []int
	env.S3.Observe(func(r *http.Request) {
		if r.Method != http.MethodPost || !r.URL.Query().Has("delete") {
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		defer mu.Unlock()
		perRequest = append(perRequest, strings.Count(string(body), "<Key>"))
	})
	refused := keys[n-1] // in the last request
	env.S3.FailKeys(func(key string) bool { return key == refused })

	failed := store.DeleteKeys(ctx, env.Bucket, keys)
	if len(failed) != 1 || failed[refused] == nil {
		t.Errorf("DeleteKeys reported %d keys failed (%v), want only %s", len(failed), failed, refused)
	}
	slices.Sort(perRequest)
	if !slices.Equal(perRequest, []int{200, 250, 250}) {
		t.Errorf("DeleteObjects requests of %v keys, want two of 250 and one of 200", perRequest)
	}
	env.S3.FailKeys(nil)
	for _, key := range keys[:n-1] {
		if env.ObjectExists(key) {
			t.Fatalf("object %s left after DeleteKeys", key)
		}
	}
}
