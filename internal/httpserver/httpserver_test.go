package httpserver_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestPlaygroundServedFromBinary: the page and every script and stylesheet
// it references come from this server, none from a CDN.
func TestPlaygroundServedFromBinary(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	page := env.Do(http.MethodGet, "/", nil, nil)
	if page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", page.Status, page.Header.Get("Content-Type"))
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q: the page must not be able to load anything from elsewhere", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page.Body, -1)
	if len(refs) < 4 {
		t.Fatalf("page references %d assets, want GraphiQL, React, ReactDOM, styles", len(refs))
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref[1], "/playground/") {
			t.Errorf("asset %s is not served by this server", ref[1])
			continue
		}
		res := env.Do(http.MethodGet, ref[1], nil, nil)
		if res.Status != 200 || len(res.Body) == 0 {
			t.Errorf("GET %s: %d", ref[1], res.Status)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "http://app.example.test"
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.CORSAllowedOrigins = allowed }})
	preflight := func(origin string) testenv.Response {
		return env.Do(http.MethodOptions, "/delete-upload-api", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"DELETE"},
			"Access-Control-Request-Headers": {"content-type,x-api-key,x-upload-id"}, // sorted, as browsers send it,
		}, nil)
	}
	res := preflight(allowed)
	if res.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "x-upload-id") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("preflight from an allowed origin: %d %v", res.Status, res.Header)
	}
	if res := preflight("http://evil.example.test"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin was allowed: %v", res.Header)
	}
	// Error responses carry the headers too, so that a page can read the body.
	res = env.Do(http.MethodDelete, "/delete-upload-api", http.Header{"Origin": {allowed}, "X-Upload-Id": {"upl_x"}}, nil)
	if res.Status != 401 || res.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("401 to an allowed origin: %d %v", res.Status, res.Header)
	}
}

func TestCORSSetting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		setting string
		want    []string
	}{{"*", []string{"*"}}, {"", nil}, {" https://a.test, https://b.test ,", []string{"https://a.test", "https://b.test"}}} {
		cfg := config.Config{CORSAllowedOrigins: c.setting}
		if got := cfg.AllowedOrigins(); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("AllowedOrigins(%q) = %q, want %q", c.setting, got, c.want)
		}
	}
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.CORSAllowedOrigins = "" }})
	res := env.Do(http.MethodDelete, "/delete-upload-api", http.Header{"Origin": {"http://a.test"}}, nil)
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an empty setting still allows cross-origin pages: %v", res.Header)
	}
}

// TestRequestLimits: oversized headers and bodies get clear errors.
func TestRequestLimits(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()

	res := env.Do(http.MethodDelete, "/delete-upload-api", http.Header{
		"X-Api-Key": {key}, "X-Upload-Id": {strings.Repeat("a", 2*httpserver.MaxHeaderBytes)},
	}, nil)
	if res.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d %s", res.Status, res.Body)
	}

	big := `{"query":"{ viewer { id } }","variables":{"pad":"` + strings.Repeat("x", httpserver.MaxOperationBytes) + `"}}`
	res = env.Do(http.MethodPost, "/graphql", http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {key}}, strings.NewReader(big))
	// Refused before anything ran: no data entry (GraphQL over HTTP).
	want := `{"errors":[{"message":"Request body exceeds the limit of 1048576 bytes","extensions":{"code":"BAD_USER_INPUT"}}]}`
	if res.Status != http.StatusRequestEntityTooLarge || res.Body != want {
		t.Errorf("oversized GraphQL body: %d %s", res.Status, res.Body)
	}
	// A body of unknown length is cut off at the limit rather than read
	// whole, and answered alike.
	res = env.Do(http.MethodPost, "/graphql", http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {key}},
		io.MultiReader(strings.NewReader(big))) // io.MultiReader hides the length: chunked
	if res.Status != http.StatusRequestEntityTooLarge || res.Body != want {
		t.Errorf("oversized chunked GraphQL body: %d %s", res.Status, res.Body)
	}
}

func TestRequestIDAndLogs(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	res := env.DeleteREST(key, "upl_00000000000000000000000000000000")
	id := res.Header.Get("X-Request-Id")
	if len(id) != 32 {
		t.Fatalf("X-Request-Id = %q", id)
	}
	res = env.Do(http.MethodGet, "/healthz", http.Header{"X-Request-Id": {"from-the-proxy.42"}}, nil)
	if got := res.Header.Get("X-Request-Id"); got != "from-the-proxy.42" {
		t.Errorf("a well-formed incoming id was not kept: %q", got)
	}
	res = env.Do(http.MethodGet, "/healthz", http.Header{"X-Request-Id": {"bad id\twith spaces"}}, nil)
	if got := res.Header.Get("X-Request-Id"); len(got) != 32 {
		t.Errorf("a malformed incoming id was kept: %q", got)
	}
	logs := env.Logs.String()
	want := `"msg":"request","method":"DELETE","route":"DELETE /delete-upload-api","status":404`
	if !strings.Contains(logs, want) || !strings.Contains(logs, `"request_id":"`+id+`"`) {
		t.Errorf("no structured request line with the id in the logs:\n%s", logs)
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	if res := env.Do(http.MethodGet, "/readyz", nil, nil); res.Status != 200 ||
		res.Body != `{"checks":{"bucket":"ok","database":"ok","webhooks":"ok"},"ready":true}`+"\n" {
		t.Errorf("readyz: %d %s", res.Status, res.Body)
	}
	env.S3.SetMode(faultproxy.Refuse)
	var res testenv.Response
	env.Eventually(5*time.Second, "readyz to see S3 down", func() bool {
		res = env.Do(http.MethodGet, "/readyz", nil, nil)
		return res.Status != 200
	})
	if res.Status != 503 || res.Body != `{"checks":{"bucket":"unavailable","database":"ok","webhooks":"ok"},"ready":false}`+"\n" {
		t.Errorf("readyz with S3 down: %d %s", res.Status, res.Body)
	}
	if res := env.Do(http.MethodGet, "/healthz", nil, nil); res.Status != 200 {
		t.Errorf("healthz with S3 down: %d (the process is alive)", res.Status)
	}
}

// TestReadinessIsCached: /readyz needs no key and has no rate limit, so
// concurrent and repeated calls share one check of the database and the
// bucket instead of each sending their own.
func TestReadinessIsCached(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	var bucketChecks atomic.Int64
	env.S3.Observe(func(r *http.Request) {
		if r.Method == http.MethodHead && strings.Trim(r.URL.Path, "/") == env.Bucket {
			bucketChecks.Add(1)
		}
	})
	began := time.Now()
	statuses := make(chan int, 50)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			res, err := http.Get(env.URL + "/readyz")
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		})
	}
	wg.Wait()
	for range 10 {
		statuses <- env.Do(http.MethodGet, "/readyz", nil, nil).Status
	}
	elapsed := time.Since(began)
	close(statuses)
	for status := range statuses {
		if status != 200 {
			t.Fatalf("readyz: %d", status)
		}
	}
	// A check starts only once the last result is older than the cache's
	// lifetime, so however slow the machine, there are at most this many.
	allowed := 1 + int64(elapsed/httpserver.ReadyCacheTTL)
	if n := bucketChecks.Load(); n > allowed {
		t.Errorf("50 calls in %s checked the bucket %d times, want at most %d", elapsed.Round(time.Millisecond), n, allowed)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	stuck := env.MustUpload(key, "b.txt", []byte("b"))
	env.DeleteREST(key, up.ID)
	env.DeleteREST(key, up.ID)
	env.S3.SetMode(faultproxy.Refuse)
	env.DeleteREST(key, stuck.ID)
	env.S3.SetMode(faultproxy.Pass)
	env.App.Purger.Flush() // the finished purge's row goes a moment after its answer

	res := env.Do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{
		`uploads_deletes_total{outcome="deleted"} 2`,
		`uploads_deletes_total{outcome="not_found"} 1`,
		`uploads_http_requests_total{route="DELETE /delete-upload-api",status="200"} 2`,
		`uploads_http_requests_total{route="DELETE /delete-upload-api",status="404"} 1`,
		`uploads_http_request_duration_seconds_count{route="POST /graphql"} 2`,
		`uploads_purge_attempts_total 2`,
		`uploads_purge_failures_total 1`,
		`uploads_purge_queue_depth 1`,
		`uploads_purge_queue_oldest_age_seconds`,
		`uploads_s3_request_duration_seconds_count{operation="PutObject",outcome="ok"} 2`,
		`uploads_s3_request_duration_seconds_count{operation="DeleteObject",outcome="error"} 1`,
	} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
