package playground_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/playground"
)

// TestFavicon: browsers ask every origin for /favicon.ico (the page needs
// no link to it); the playground answers with an image, so that its
// console shows no 404.
func TestFavicon(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	playground.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/favicon.ico", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "image/") {
		t.Fatalf("GET /favicon.ico: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.HasPrefix(rec.Body.Bytes(), []byte{0, 0, 1, 0}) { // an ICO file's header
		t.Errorf("GET /favicon.ico is not an icon: % x", rec.Body.Bytes()[:min(8, rec.Body.Len())])
	}
}

// TestHintsFitTheEditor: every line of the playground's opening query,
// hint comments included, fits an editor 60 columns wide, its width beside
// the result pane on a laptop screen.
func TestHintsFitTheEditor(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("init.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(js)
	start := strings.Index(src, "var defaultQuery = [")
	end := strings.Index(src, "].join('\\n')")
	if start < 0 || end < start {
		t.Fatal("init.js has no defaultQuery array")
	}
	lines := 0
	for _, line := range strings.Split(src[start:end], "\n")[1:] {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "'") {
			continue
		}
		text := strings.TrimSuffix(strings.TrimSuffix(line, ","), "'")[1:]
		lines++
		if n := len([]rune(text)); n > 60 {
			t.Errorf("%d columns: %s", n, text)
		}
	}
	if lines < 10 {
		t.Errorf("found only %d lines in defaultQuery", lines)
	}
}
