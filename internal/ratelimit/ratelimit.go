// Package ratelimit limits requests per API key (per client address for
// requests without a valid key), in process or, for several instances,
// shared through Redis. It uses github.com/go-chi/httprate's sliding-window
// limiter; redis.go adapts its counter to Redis.
package ratelimit

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"

	"github.com/safedelete/uploads/internal/viewer"
)

// Config says how many requests a key may make per window.
type Config struct {
	Requests int
	Window   time.Duration
	// Redis shares the counts between instances; nil counts in process.
	Redis  *redis.Client
	Logger *slog.Logger
}

// Limiter limits the routes it wraps; each route answers a limited request
// in its own format.
type Limiter struct {
	limiter *httprate.RateLimiter
	logger  *slog.Logger
}

type counterErrKey struct{}

// New returns a Limiter, or nil when cfg.Requests is not positive (no limit).
func New(cfg Config) *Limiter {
	if cfg.Requests <= 0 {
		return nil
	}
	opts := []httprate.Option{
		// httprate's own header names, spelled as net/http canonicalises
		// them: so they already appear on the wire, and a canonical name is
		// stored as it is instead of being rewritten, in a new string, for
		// every header of every request.
		httprate.WithResponseHeaders(httprate.ResponseHeaders{
			Limit:      "X-Ratelimit-Limit",
			Remaining:  "X-Ratelimit-Remaining",
			Increment:  "X-Ratelimit-Increment",
			Reset:      "X-Ratelimit-Reset",
			RetryAfter: "Retry-After",
		}),
		// A failing counter (Redis down) must not take deletes down with it:
		// the limiter fails open, and says so in the logs.
		httprate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			if failed, ok := r.Context().Value(counterErrKey{}).(*error); ok {
				*failed = err
			}
		}),
	}
	if cfg.Redis != nil {
		opts = append(opts, httprate.WithLimitCounter(newRedisCounter(cfg.Redis)))
	}
	return &Limiter{limiter: httprate.NewRateLimiter(cfg.Requests, cfg.Window, opts...), logger: cfg.Logger}
}

// Wrap limits next; limited requests get 429, Retry-After, and the body
// written by respond. It expects the auth middleware to have run.
func (l *Limiter) Wrap(next http.Handler, respond func(http.ResponseWriter, *http.Request)) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var counterErr error
		r = r.WithContext(context.WithValue(r.Context(), counterErrKey{}, &counterErr))
		limited := l.limiter.OnLimit(w, r, key(r))
		switch {
		case counterErr != nil:
			l.logger.WarnContext(r.Context(), "rate limit counter failed; request let through", "error", counterErr)
		case limited:
			if w.Header().Get("Retry-After") == "" {
				w.Header().Set("Retry-After", strconv.Itoa(1))
			}
			respond(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Allow counts one request of the caller in ctx (its viewer, or
// remoteAddr without one) and reports whether it is within the limit: for
// what arrives other than as a request, an operation over a WebSocket.
func (l *Limiter) Allow(ctx context.Context, remoteAddr string) bool {
	if l == nil {
		return true
	}
	var counterErr error
	r := (&http.Request{RemoteAddr: remoteAddr}).WithContext(context.WithValue(ctx, counterErrKey{}, &counterErr))
	limited := l.limiter.OnLimit(discardHeaders{}, r, key(r))
	if counterErr != nil {
		l.logger.WarnContext(ctx, "rate limit counter failed; operation let through", "error", counterErr)
		return true
	}
	return !limited
}

// discardHeaders is a response nobody reads: Allow's limiter sets its
// headers on it.
type discardHeaders struct{}

func (discardHeaders) Header() http.Header         { return http.Header{} }
func (discardHeaders) Write(b []byte) (int, error) { return len(b), nil }
func (discardHeaders) WriteHeader(int)             {}

// key is the API key's id for requests with a key, the user's for requests
// with access tokens (a person may hold many at once); others are counted
// by client address, so that guessing keys is limited too.
func key(r *http.Request) string {
	if v, err := viewer.FromContext(r.Context()); err == nil {
		if v.APIKeyID != "" {
			return "key:" + v.APIKeyID
		}
		return "user:" + v.UserID
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}
