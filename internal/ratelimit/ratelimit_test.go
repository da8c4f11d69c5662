package ratelimit_test

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/safedelete/uploads/internal/ratelimit"
	"github.com/safedelete/uploads/internal/viewer"
)

func handler(l *ratelimit.Limiter) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return l.Wrap(ok, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	})
}

func call(h http.Handler, keyID string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodDelete, "/", nil)
	r = r.WithContext(viewer.NewContext(r.Context(), viewer.Viewer{UserID: "usr_x", APIKeyID: keyID}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func randomKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "key_" + hex.EncodeToString(b)
}

func TestInProcess(t *testing.T) {
	t.Parallel()
	h := handler(ratelimit.New(ratelimit.Config{Requests: 3, Window: time.Minute, Logger: slog.Default()}))
	key := randomKey()
	for i := range 3 {
		if w := call(h, key); w.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	w := call(h, key)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
		t.Errorf("4th request: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call(h, randomKey()); w.Code != http.StatusNoContent {
		t.Errorf("another key was limited too: %d", w.Code)
	}
}

// TestSharedThroughRedis: two instances count together. It needs a Redis
// server: .ci/run sets TEST_REDIS_URL to the machine's.
func TestSharedThroughRedis(t *testing.T) {
	t.Parallel()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		t.Skip("TEST_REDIS_URL not set; .ci/run runs this against the machine's Redis")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	newInstance := func() http.Handler {
		return handler(ratelimit.New(ratelimit.Config{Requests: 3, Window: time.Minute, Redis: redis.NewClient(opts), Logger: slog.Default()}))
	}
	a, b := newInstance(), newInstance()
	key := randomKey()
	for i, h := range []http.Handler{a, b, a} {
		if w := call(h, key); w.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	if w := call(b, key); w.Code != http.StatusTooManyRequests {
		t.Errorf("4th request, on the other instance: %d, want 429", w.Code)
	}
}

// TestRedisDownFailsOpen: with Redis unreachable, requests go through.
func TestRedisDownFailsOpen(t *testing.T) {
	t.Parallel()
	h := handler(ratelimit.New(ratelimit.Config{
		Requests: 1, Window: time.Minute, Logger: slog.New(slog.DiscardHandler),
		Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}),
	}))
	for range 3 {
		if w := call(h, "key_x"); w.Code != http.StatusNoContent {
			t.Fatalf("request refused while the counter is down: %d", w.Code)
		}
	}
}
