package requestlog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/requestlog"
)

// TestRouteLabels: every request is labelled "METHOD /path" from the route
// that took it, in the logs and for the metrics alike, and the labels come
// from a fixed set whatever methods and paths arrive.
func TestRouteLabels(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", ok)
	mux.Handle("GET /{$}", ok)
	mux.Handle("/graphql", ok)
	mux.Handle("/delete-upload-api", ok)
	var logs bytes.Buffer
	var observed []string
	h := requestlog.Middleware(slog.New(slog.NewJSONHandler(&logs, nil)),
		func(route string, status int, elapsed time.Duration) { observed = append(observed, route) },
		requestlog.Serves("/graphql", http.MethodGet, http.MethodPost),
		requestlog.Serves("/delete-upload-api", http.MethodDelete),
	)(mux)

	for _, c := range []struct{ method, path, route string }{
		{"GET", "/healthz", "GET /healthz"},
		{"HEAD", "/healthz", "GET /healthz"}, // a GET route serves HEAD too
		{"GET", "/", "GET /{$}"},
		{"POST", "/graphql", "POST /graphql"},
		{"GET", "/graphql?query={__typename}", "GET /graphql"},
		{"PUT", "/graphql", "OTHER /graphql"},
		{"BREW", "/graphql", "OTHER /graphql"},
		{"DELETE", "/delete-upload-api", "DELETE /delete-upload-api"},
		{"GET", "/delete-upload-api", "OTHER /delete-upload-api"},
		{"POST", "/healthz", requestlog.Unmatched},
		{"GET", "/wp-login.php", requestlog.Unmatched},
	} {
		logs.Reset()
		observed = nil
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
		var line struct {
			Route      string   `json:"route"`
			Method     string   `json:"method"`
			DurationMS *float64 `json:"duration_ms"`
		}
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%s %s: log line %q: %v", c.method, c.path, logs.String(), err)
		}
		if line.Route != c.route || len(observed) != 1 || observed[0] != c.route {
			t.Errorf("%s %s: logged %q, observed %q; want %q", c.method, c.path, line.Route, observed, c.route)
		}
		if line.Method != c.method || line.DurationMS == nil || *line.DurationMS < 0 {
			t.Errorf("%s %s: log line %s", c.method, c.path, logs.String())
		}
	}
}

func TestMilliseconds(t *testing.T) {
	t.Parallel()
	if got := requestlog.Milliseconds(1234567 * time.Nanosecond); got != 1.234 {
		t.Errorf("Milliseconds(1.234567ms) = %v", got)
	}
}
