package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/oidc"
	"github.com/safedelete/uploads/internal/oidc/oidctest"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

const audience = "https://uploads.example/api"

// verifier is a Verifier of iss's tokens, logging into logs, stopped when
// t ends.
func verifier(t *testing.T, iss *oidctest.Issuer, logs *testenv.SyncBuffer, opts oidc.Options) *oidc.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Issuer, opts.Audience = iss.URL, audience
	opts.ClockSkew = time.Minute
	opts.DefaultScopes = scope.DefaultForTokens
	if logs != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return oidc.New(ctx, opts)
}

func token(iss *oidctest.Issuer, key oidctest.Key, subject string) string {
	return iss.Token(key, oidctest.Claims{"sub": subject, "aud": audience})
}

// eventually polls cond every 10 ms until it holds, failing t after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still not %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKeyRotation: when the issuer publishes a new key, its tokens verify
// at once with the same Verifier (the unknown kid makes it fetch the keys
// again), the old key's tokens still verify, and another rotation is picked
// up as soon as UnknownKeyInterval has passed since the last such fetch.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	ctx := context.Background()
	first := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, first)
	v := verifier(t, iss, nil, oidc.Options{UnknownKeyInterval: interval, RefreshInterval: time.Hour})
	if _, err := v.Verify(ctx, token(iss, first, "alice")); err != nil {
		t.Fatalf("a token of the first key: %v", err)
	}

	second := oidctest.NewKey(t, "ES256")
	iss.Publish(first, second)
	fetches := iss.KeyFetches.Load()
	beforeFetch := time.Now() // the fetch's turn is taken after this
	claims, err := v.Verify(ctx, token(iss, second, "alice"))
	rotated := time.Now()
	if err != nil || claims.Subject != "alice" {
		t.Fatalf("a token of the rotated-in key: %+v %v", claims, err)
	}
	if got := iss.KeyFetches.Load() - fetches; got != 1 {
		t.Errorf("the new kid caused %d key fetches, want 1", got)
	}
	if _, err := v.Verify(ctx, token(iss, first, "alice")); err != nil {
		t.Errorf("a token of the old key, still published: %v", err)
	}

	third := oidctest.NewKey(t, "EdDSA")
	iss.Publish(second, third)
	fetches = iss.KeyFetches.Load()
	start := time.Now()
	_, err = v.Verify(ctx, token(iss, third, "alice"))
	// Decided by what happened, not by how fast this machine is: a fetch
	// that started less than UnknownKeyInterval after the last one's turn
	// was taken is a fetch too many, and its token must have been refused.
	if start.Sub(beforeFetch) < interval && (iss.KeyFetches.Load() != fetches || err == nil) {
		t.Errorf("a second new kid %s after the last fetch (UnknownKeyInterval %s) was fetched for: %d fetches, err %v",
			start.Sub(beforeFetch).Round(time.Millisecond), interval, iss.KeyFetches.Load()-fetches, err)
	}
	// Once the interval has passed, the next unknown kid is fetched for.
	time.Sleep(time.Until(rotated.Add(interval)))
	fetches = iss.KeyFetches.Load()
	if _, err := v.Verify(ctx, token(iss, third, "alice")); err != nil {
		t.Errorf("a token of a key rotated in %s after the last fetch (UnknownKeyInterval %s): %v",
			time.Since(rotated).Round(time.Millisecond), interval, err)
	}
	if got := iss.KeyFetches.Load() - fetches; got != 1 {
		t.Errorf("the third kid caused %d key fetches, want 1", got)
	}
	if _, err := v.Verify(ctx, token(iss, first, "alice")); err == nil {
		t.Errorf("a token of a key the issuer no longer publishes verified")
	}
}

// TestIssuerDown: while the issuer is unreachable, tokens of cached keys
// keep verifying and the token check stays ready; the failed background
// refreshes are logged.
func TestIssuerDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	logs := &testenv.SyncBuffer{}
	v := verifier(t, iss, logs, oidc.Options{RefreshInterval: 50 * time.Millisecond, UnknownKeyInterval: 50 * time.Millisecond})
	valid := token(iss, key, "alice")
	if _, err := v.Verify(ctx, valid); err != nil {
		t.Fatalf("before the issuer went down: %v", err)
	}

	iss.SetDown(true)
	fetches := iss.KeyFetches.Load()
	eventually(t, 5*time.Second, "two failed background refreshes logged", func() bool {
		return iss.KeyFetches.Load() >= fetches+2 &&
			strings.Count(logs.String(), "refresh the access token issuer's keys; the cached keys stay in use") >= 2
	})
	if _, err := v.Verify(ctx, valid); err != nil {
		t.Errorf("a token of a cached key while the issuer is down: %v", err)
	}
	if _, err := v.Verify(ctx, token(iss, key, "bob")); err != nil {
		t.Errorf("a new token of a cached key while the issuer is down: %v", err)
	}
	if err := v.Check(ctx); err != nil {
		t.Errorf("Check while the issuer is down, keys cached: %v", err)
	}
	if _, err := v.Verify(ctx, token(iss, oidctest.NewKey(t, "ES256"), "alice")); !errors.Is(err, oidc.ErrRefused) {
		t.Errorf("a token of an unknown key while the issuer is down: %v", err)
	}
	if strings.Contains(logs.String(), valid) {
		t.Errorf("a token appears in the logs")
	}
}

// TestForgedKidFlood: tokens naming 1,000 distinct unknown kids, sent from
// 16 goroutines for about a second, make the Verifier fetch the keys at most
// once per UnknownKeyInterval (plus the first), and each is refused.
func TestForgedKidFlood(t *testing.T) {
	// Serial: it measures (FIGURE) fetches and latency under a flood of its own.
	const (
		interval   = 250 * time.Millisecond
		kids       = 1000
		goroutines = 16
		runFor     = time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	v := verifier(t, iss, nil, oidc.Options{UnknownKeyInterval: interval, RefreshInterval: time.Hour})
	forger := oidctest.NewKey(t, "ES256") // never published
	forged := make([]string, kids)
	for i := range forged {
		k := forger
		k.ID = fmt.Sprintf("forged-%d-%x", i, time.Now().UnixNano())
		forged[i] = token(iss, k, "alice")
	}

	var (
		next, accepted atomic.Int64
		wg             sync.WaitGroup
		mu             sync.Mutex
		took           []time.Duration // of every request
	)
	before := iss.KeyFetches.Load()
	start := time.Now()
	for range goroutines {
		wg.Go(func() {
			var mine []time.Duration
			defer func() { mu.Lock(); took = append(took, mine...); mu.Unlock() }()
			for {
				i := next.Add(1) - 1
				if i >= kids && time.Since(start) >= runFor || ctx.Err() != nil {
					return
				}
				began := time.Now()
				_, err := v.Verify(ctx, forged[i%kids])
				mine = append(mine, time.Since(began))
				if err == nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := iss.KeyFetches.Load() - before
	if ctx.Err() != nil {
		t.Fatalf("the flood did not end within a minute")
	}
	if accepted.Load() != 0 {
		t.Errorf("%d forged tokens were accepted", accepted.Load())
	}
	bound := 1 + int64(elapsed/interval)
	if fetches > bound {
		t.Errorf("%d forged kids over %s made %d key fetches, more than 1 + elapsed/UnknownKeyInterval = %d",
			kids, elapsed.Round(time.Millisecond), fetches, bound)
	}
	if _, err := v.Verify(ctx, token(iss, key, "alice")); err != nil {
		t.Errorf("a valid token after the flood: %v", err)
	}
	slices.Sort(took)
	t.Logf("FIGURE forged-kid flood: %d distinct kids, %d requests from %d goroutines over %s: %d JWKS fetches (bound 1 + elapsed/%s = %d)",
		kids, len(took), goroutines, elapsed.Round(time.Millisecond), fetches, interval, bound)
	t.Logf("FIGURE forged-token refusal: slowest %s, p99.9 %s, p99 %s, median %s (on %d cores shared with other work)",
		took[len(took)-1].Round(time.Microsecond), took[len(took)*999/1000].Round(time.Microsecond),
		took[len(took)*99/100].Round(time.Microsecond), took[len(took)/2].Round(time.Microsecond), runtime.NumCPU())
}

// TestVerifyTime measures a valid token's check with cached keys.
func TestVerifyTime(t *testing.T) {
	// Serial: it measures (FIGURE) the time a check takes.
	const n = 2000
	ctx := context.Background()
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		key := oidctest.NewKey(t, alg)
		iss := oidctest.Start(t, key)
		v := verifier(t, iss, nil, oidc.Options{RefreshInterval: time.Hour})
		valid := token(iss, key, "alice")
		start := time.Now()
		for range n {
			if _, err := v.Verify(ctx, valid); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("FIGURE verify time of a valid %s token: %s average over %d", alg, (time.Since(start) / n).Round(100*time.Nanosecond), n)
	}
}

// TestNoKeysAtStart: an issuer unreachable when the Verifier starts leaves
// it without keys: Check says so and every token is refused; once the
// issuer answers, the background retry loads the keys and tokens verify.
func TestNoKeysAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	iss.SetDown(true)
	logs := &testenv.SyncBuffer{}
	v := verifier(t, iss, logs, oidc.Options{})
	valid := token(iss, key, "alice")
	err := v.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no signing keys") {
		t.Errorf("Check with the issuer down at start: %v, want an error saying there are no keys", err)
	}
	if _, err := v.Verify(ctx, valid); !errors.Is(err, oidc.ErrRefused) {
		t.Errorf("a token with no keys: %v, want refused", err)
	}
	if !strings.Contains(logs.String(), "retrying in the background") {
		t.Errorf("the failed start was not logged:\n%s", logs)
	}

	iss.SetDown(false)
	eventually(t, 15*time.Second, "ready once the issuer is back", func() bool { return v.Check(ctx) == nil })
	if _, err := v.Verify(ctx, valid); err != nil {
		t.Errorf("a token once the keys are loaded: %v", err)
	}
}

// TestReadinessWithoutKeys: a service whose issuer was unreachable at start
// reports its access_tokens check unavailable on /readyz (and ready once
// the issuer is back), while API keys keep working.
func TestReadinessWithoutKeys(t *testing.T) {
	t.Parallel()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	iss.SetDown(true)
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.AuthIssuer = iss.URL
		c.AuthAudience = audience
	}})
	res := env.Do(http.MethodGet, "/readyz", nil, nil)
	want := `{"checks":{"access_tokens":"unavailable","bucket":"ok","database":"ok","webhooks":"ok"},"ready":false}` + "\n"
	if res.Status != http.StatusServiceUnavailable || res.Body != want {
		t.Errorf("readyz with the issuer down at start: %d %s, want 503 %s", res.Status, res.Body, want)
	}
	_, apiKey := env.NewUser()
	if g := env.GraphQL(apiKey, `{ viewer { id } }`, nil); len(g.Errors) != 0 {
		t.Errorf("an API key while tokens cannot be checked: %+v", g.Errors)
	}

	iss.SetDown(false)
	env.Eventually(15*time.Second, "readyz to see the keys", func() bool {
		res = env.Do(http.MethodGet, "/readyz", nil, nil)
		return res.Status == http.StatusOK
	})
	if want := `{"checks":{"access_tokens":"ok","bucket":"ok","database":"ok","webhooks":"ok"},"ready":true}` + "\n"; res.Body != want {
		t.Errorf("readyz once the issuer is back: %s, want %s", res.Body, want)
	}
}

// slowTransport answers every request after delay, as a distant issuer does.
type slowTransport struct{ delay time.Duration }

func (s slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-time.After(s.delay):
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestKeyRotationDistantIssuer: a rotated-in key is fetched on its first
// token even when the issuer takes 150ms to answer (a TLS handshake and a
// round trip across an ocean take that much), not only after the next
// background refresh.
func TestKeyRotationDistantIssuer(t *testing.T) {
	// Serial: it measures (FIGURE) the first token's latency.
	ctx := context.Background()
	first := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, first)
	v := verifier(t, iss, nil, oidc.Options{
		HTTPClient:         &http.Client{Transport: slowTransport{150 * time.Millisecond}, Timeout: 10 * time.Second},
		UnknownKeyInterval: time.Second, RefreshInterval: time.Hour,
	})
	second := oidctest.NewKey(t, "ES256")
	iss.Publish(first, second)
	began := time.Now()
	if _, err := v.Verify(ctx, token(iss, second, "alice")); err != nil {
		t.Errorf("a token of a key rotated in at a distant issuer: %v", err)
	}
	t.Logf("FIGURE first token of a rotated-in key at an issuer 150ms away: %s", time.Since(began).Round(time.Millisecond))
}
