package objectstore_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/safedelete/uploads/internal/testenv"
)

// TestRoundTrip runs every call the service makes against the real S3
// server of the test run (the embedded one, or TEST_S3_ENDPOINT).
func TestRoundTrip(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	store := env.App.Store
	ctx := context.Background()
	if err := store.Put(ctx, "dir/a.txt", bytes.NewReader([]byte("hello")), 5, "text/plain"); err != nil {
		t.Fatal(err)
	}
	if !env.ObjectExists("dir/a.txt") {
		t.Fatal("object not stored")
	}
	if err := store.Delete(ctx, env.Bucket, "dir/a.txt"); err != nil {
		t.Fatal(err)
	}
	if env.ObjectExists("dir/a.txt") {
		t.Fatal("object not deleted")
	}
	if err := store.Delete(ctx, env.Bucket, "dir/a.txt"); err != nil {
		t.Errorf("deleting an absent object must succeed (purges are retried): %v", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Errorf("EnsureBucket on an existing bucket: %v", err)
	}
}

// TestNoChecksumTrailers: since 2025 the SDK by default streams uploads as
// aws-chunked with CRC32 trailers, which several S3-compatible servers
// reject. The store must send plain, signed payloads that every server
// accepts.
func TestNoChecksumTrailers(t *testing.T) {
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
	if err := env.App.Store.Put(context.Background(), "k", strings.NewReader("payload"), 7, "text/plain"); err != nil {
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
