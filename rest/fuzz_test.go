package rest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/testenv"
)

// maxFuzzHeader keeps inputs below the HTTP server's header limit: past it
// the server itself answers 431 before any handler runs.
const maxFuzzHeader = 16 << 10

// FuzzDeleteUploadHeaders sends fuzzed x-api-key and x-upload-id values,
// with a fuzzed method, through the real HTTP server to the real handler,
// and holds every answer to the contract: the exact status and body the
// contract's table gives for that input, never a 5xx, always
// application/json, and nothing deleted unless the owner's key named the
// owner's upload. Another user's upload survives every input.
//
// One service serves the whole run; a model of it (which key belongs to
// whom, which upload is live) predicts each answer.
func FuzzDeleteUploadHeaders(f *testing.F) {
	w := newFuzzWorld(f)
	seeds := []struct{ method, apiKey, uploadID string }{
		{"DELETE", testenv.PhKey, testenv.PhMine},                              // the owner deletes: 200
		{"DELETE", testenv.PhKey, testenv.PhGone},                              // again: 404
		{"DELETE", "abcdef1234567890", "upl_4c0a85f67aa74ecb95a9494a96e4a327"}, // the spec's example key
		{"DELETE", "", ""},
		{"DELETE", "", testenv.PhMine},
		{"DELETE", "   ", testenv.PhMine},
		{"DELETE", testenv.PhKey, ""},
		{"DELETE", testenv.PhKey, " \t "},
		{"DELETE", " " + testenv.PhKey + "\t", "\t" + testenv.PhMine + " "}, // surrounding whitespace is ignored
		{"DELETE", testenv.PhKey + "\u00a0", testenv.PhMine + "\u2003"},     // Unicode whitespace: around the key it is trimmed, around the id it is not
		{"DELETE", testenv.PhKeyUpper, testenv.PhMine},
		{"DELETE", testenv.PhKey, testenv.PhMineUp},
		{"DELETE", "Bearer " + testenv.PhKey, testenv.PhMine},
		{"DELETE", testenv.PhRevoked, testenv.PhMine},
		{"DELETE", testenv.PhIntruder, testenv.PhMine},
		{"DELETE", testenv.PhKey, testenv.PhVictim},
		{"DELETE", testenv.PhIntruder, testenv.PhVictim},
		{"DELETE", testenv.PhKey, "upl_00000000000000000000000000000000"},
		{"DELETE", testenv.PhKey, "upl_0123456789abcdef0123456789ABCDEF"},
		{"DELETE", testenv.PhKey, "upl_" + strings.Repeat("a", 1000)},
		{"DELETE", strings.Repeat("k", 1000), testenv.PhMine},
		{"DELETE", "ключ-🔑", "upl_ünïcødé"},
		{"DELETE", testenv.PhKey, "' OR 1=1 --"},
		{"DELETE", "' OR '1'='1", testenv.PhMine},
		{"DELETE", testenv.PhKey, "upl_%"},
		{"DELETE", testenv.PhKey, testenv.PhMine + "' OR owner_id IS NOT NULL --"},
		{"DELETE", testenv.PhKey, "\xff\xfe" + testenv.PhMine},
		{"GET", testenv.PhKey, testenv.PhMine},
		{"HEAD", testenv.PhKey, testenv.PhMine},
		{"POST", testenv.PhKey, testenv.PhMine},
		{"OPTIONS", testenv.PhKey, testenv.PhMine},
		{"delete", testenv.PhKey, testenv.PhMine},
	}
	for _, s := range seeds {
		f.Add(s.method, s.apiKey, s.uploadID)
	}
	f.Fuzz(func(t *testing.T, method, apiKey, uploadID string) {
		w.checkREST(t, method, apiKey, uploadID)
	})
}

// fuzzWorld is the service under fuzzing and a model of its state.
type fuzzWorld struct {
	*testenv.Cast
	env    *testenv.Env
	client *http.Client
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	env := testenv.New(f, testenv.Options{})
	transport := &http.Transport{MaxIdleConnsPerHost: 4}
	f.Cleanup(transport.CloseIdleConnections)
	return &fuzzWorld{
		Cast:   env.NewCast(),
		env:    env,
		client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
	}
}

func (w *fuzzWorld) checkREST(t *testing.T, method, apiKey, uploadID string) {
	apiKey, uploadID = w.Expand(apiKey), w.Expand(uploadID)
	if method == "" {
		method = http.MethodGet // what net/http sends for an empty method
	}
	if len(method)+len(apiKey)+len(uploadID) > maxFuzzHeader {
		t.Skip("larger than the server's header limit")
	}
	if !validHeaderValue(apiKey) || !validHeaderValue(uploadID) {
		t.Skip("net/http refuses to send this header value")
	}
	req, err := http.NewRequest(method, w.env.URL+"/delete-upload-api", nil)
	if err != nil {
		t.Skipf("net/http refuses to build this request: %v", err)
	}
	req.Header = hdr(apiKey, uploadID)
	res, err := w.client.Do(req)
	if err != nil {
		if isClientValidation(err) {
			t.Skipf("net/http refuses to send this request: %v", err)
		}
		t.Fatalf("%s with x-api-key %q, x-upload-id %q: %v", method, apiKey, uploadID, err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("read response: %v", err)
	}

	wantStatus, wantBody := w.predictREST(method, apiKey, uploadID)
	if res.StatusCode >= 500 {
		t.Errorf("%s x-api-key %q x-upload-id %q: got %d %s", method, apiKey, uploadID, res.StatusCode, body)
	}
	switch res.StatusCode {
	case 200, 400, 401, 404, 405:
	default:
		t.Errorf("status %d is not one of the contract's", res.StatusCode)
	}
	if res.StatusCode != wantStatus || string(body) != wantBody {
		t.Errorf("%s x-api-key %q x-upload-id %q:\ngot  %d %s\nwant %d %s",
			method, apiKey, uploadID, res.StatusCode, body, wantStatus, wantBody)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") != http.MethodDelete {
		t.Errorf("405 with Allow %q, want DELETE", res.Header.Get("Allow"))
	}
	w.Settle(t, res.StatusCode == http.StatusOK && wantStatus == http.StatusOK)
}

// predictREST is the contract's table applied to the model: credentials,
// then the upload id, then ownership.
func (w *fuzzWorld) predictREST(method, apiKey, uploadID string) (int, string) {
	if method != http.MethodDelete {
		if method == http.MethodHead {
			return http.StatusMethodNotAllowed, ""
		}
		return http.StatusMethodNotAllowed, `{"error":"Method not allowed"}`
	}
	// The server strips spaces and tabs around header values; the service
	// then trims only ASCII white space around a key and an id: both are
	// ASCII, and one bordered by a no-break space is not one.
	key := strings.Trim(apiKey, " \t\n\v\f\r")
	if key != w.OwnerKey && key != w.IntruderKey {
		return http.StatusUnauthorized, unauthorized
	}
	id := strings.Trim(uploadID, " \t\n\v\f\r")
	switch {
	case id == "":
		return http.StatusBadRequest, missingID
	case key == w.OwnerKey && id == w.Mine.ID:
		return http.StatusOK, success(id)
	default:
		return http.StatusNotFound, notFound
	}
}

// validHeaderValue is net/http's own check on outgoing header values
// (httpguts.ValidHeaderFieldValue): no control bytes but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isClientValidation reports an error net/http raised before sending.
func isClientValidation(err error) bool {
	return strings.Contains(err.Error(), "net/http: invalid header")
}
