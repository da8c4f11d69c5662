package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/testenv"
)

// Placeholders a fuzz input may contain; each is replaced by a value that
// exists only in the running service, so that seeds (and the fuzzer's
// mutations of them) can name real keys and uploads.
const (
	phKey      = "{key}"      // the owner's API key
	phKeyUpper = "{KEY}"      // the owner's API key in upper case
	phIntruder = "{intruder}" // a valid key of a user who owns nothing
	phRevoked  = "{revoked}"  // a revoked key of the owner
	phMine     = "{mine}"     // the owner's live upload
	phMineUp   = "{MINE}"     // the owner's live upload, id in upper case
	phGone     = "{gone}"     // the owner's most recently deleted upload
	phVictim   = "{victim}"   // an upload of a third user, whose key is never sent
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
		{"DELETE", phKey, phMine}, // the owner deletes: 200
		{"DELETE", phKey, phGone}, // again: 404
		{"DELETE", "abcdef1234567890", "upl_4c0a85f67aa74ecb95a9494a96e4a327"}, // the spec's example key
		{"DELETE", "", ""},
		{"DELETE", "", phMine},
		{"DELETE", "   ", phMine},
		{"DELETE", phKey, ""},
		{"DELETE", phKey, " \t "},
		{"DELETE", " " + phKey + "\t", "\t" + phMine + " "}, // surrounding whitespace is ignored
		{"DELETE", phKey + "\u00a0", phMine + "\u2003"},     // so is Unicode whitespace
		{"DELETE", phKeyUpper, phMine},
		{"DELETE", phKey, phMineUp},
		{"DELETE", "Bearer " + phKey, phMine},
		{"DELETE", phRevoked, phMine},
		{"DELETE", phIntruder, phMine},
		{"DELETE", phKey, phVictim},
		{"DELETE", phIntruder, phVictim},
		{"DELETE", phKey, "upl_00000000000000000000000000000000"},
		{"DELETE", phKey, "upl_0123456789abcdef0123456789ABCDEF"},
		{"DELETE", phKey, "upl_" + strings.Repeat("a", 1000)},
		{"DELETE", strings.Repeat("k", 1000), phMine},
		{"DELETE", "ключ-🔑", "upl_ünïcødé"},
		{"DELETE", phKey, "' OR 1=1 --"},
		{"DELETE", "' OR '1'='1", phMine},
		{"DELETE", phKey, "upl_%"},
		{"DELETE", phKey, phMine + "' OR owner_id IS NOT NULL --"},
		{"DELETE", phKey, "\xff\xfe" + phMine},
		{"GET", phKey, phMine},
		{"HEAD", phKey, phMine},
		{"POST", phKey, phMine},
		{"OPTIONS", phKey, phMine},
		{"delete", phKey, phMine},
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
	env    *testenv.Env
	client *http.Client

	ownerKey, intruderKey, revokedKey string
	mine                              *ent.Upload // the owner's one live upload
	gone                              string      // id of the owner's last deleted upload
	victim                            *ent.Upload // a third user's upload; must survive everything
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	env := testenv.New(f, testenv.Options{})
	ownerID, ownerKey := env.NewUser()
	_, intruderKey := env.NewUser()
	_, victimKey := env.NewUser()
	revoked, revokedKey, err := apikey.Create(context.Background(), env.Client(), ownerID)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := apikey.Revoke(context.Background(), env.Client(), revoked.ID); err != nil {
		f.Fatal(err)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 4}
	f.Cleanup(transport.CloseIdleConnections)
	w := &fuzzWorld{
		env:         env,
		client:      &http.Client{Transport: transport, Timeout: 30 * time.Second},
		ownerKey:    ownerKey,
		intruderKey: intruderKey,
		revokedKey:  revokedKey,
		victim:      env.MustUpload(victimKey, "victim-secret.txt", []byte("not yours")),
		mine:        env.MustUpload(ownerKey, "mine.txt", []byte("mine")),
		gone:        "upl_ffffffffffffffffffffffffffffffff",
	}
	return w
}

// expand replaces the placeholders in a fuzz input by the world's values.
func (w *fuzzWorld) expand(s string) string {
	return strings.NewReplacer(
		phKey, w.ownerKey,
		phKeyUpper, strings.ToUpper(w.ownerKey),
		phIntruder, w.intruderKey,
		phRevoked, w.revokedKey,
		phMine, w.mine.ID,
		phMineUp, strings.ToUpper(w.mine.ID),
		phGone, w.gone,
		phVictim, w.victim.ID,
	).Replace(s)
}

func (w *fuzzWorld) checkREST(t *testing.T, method, apiKey, uploadID string) {
	apiKey, uploadID = w.expand(apiKey), w.expand(uploadID)
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
	w.settle(t, res.StatusCode == http.StatusOK && wantStatus == http.StatusOK)
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
	// then trims all white space.
	key := strings.TrimSpace(apiKey)
	if key != w.ownerKey && key != w.intruderKey {
		return http.StatusUnauthorized, unauthorized
	}
	id := strings.TrimSpace(uploadID)
	switch {
	case id == "":
		return http.StatusBadRequest, missingID
	case key == w.ownerKey && id == w.mine.ID:
		return http.StatusOK, success(id)
	default:
		return http.StatusNotFound, notFound
	}
}

// settle checks the bucket and database after a request. When the owner's
// upload was deleted, its record and object must be gone, and a new live
// upload replaces it. In every case the victim's record and object remain,
// and no other record was deleted.
func (w *fuzzWorld) settle(t *testing.T, deleted bool) {
	ctx := context.Background()
	if deleted {
		if _, err := w.env.Client().Upload.Get(ctx, w.mine.ID); !ent.IsNotFound(err) {
			t.Errorf("record of deleted upload %s: err %v, want not found", w.mine.ID, err)
		}
		w.waitObjectGone(t, w.mine.ObjectKey)
		w.gone = w.mine.ID
		w.mine = w.upload(t)
	}
	if _, err := w.env.Client().Upload.Get(ctx, w.victim.ID); err != nil {
		t.Fatalf("victim's record is gone: %v", err)
	}
	if ok, err := w.env.Direct.Exists(ctx, w.env.Bucket, w.victim.ObjectKey); err != nil || !ok {
		t.Fatalf("victim's object is gone (exists %v, err %v)", ok, err)
	}
	if _, err := w.env.Client().Upload.Get(ctx, w.mine.ID); err != nil {
		t.Fatalf("the owner's upload %s was deleted without a 200: %v", w.mine.ID, err)
	}
	if n, err := w.env.Client().Upload.Query().Count(ctx); err != nil || n != 2 {
		t.Fatalf("%d upload records (err %v), want 2", n, err)
	}
}

// waitObjectGone waits for an object's purge: inline normally, by the
// background purger if S3 was slow.
func (w *fuzzWorld) waitObjectGone(t *testing.T, objectKey string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := w.env.Direct.Exists(context.Background(), w.env.Bucket, objectKey)
		if err != nil {
			t.Fatalf("head object %s: %v", objectKey, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("object %s still in the bucket 10s after its upload was deleted", objectKey)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upload gives the owner a new live upload through the GraphQL multipart
// API (testenv's helpers report to the *testing.F, which the fuzz function
// may not use).
func (w *fuzzWorld) upload(t *testing.T) *ent.Upload {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("operations", `{"query":"mutation($f: File!) { uploadFile(file: $f) { id status } }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	part, _ := mw.CreateFormFile("0", "mine.txt")
	_, _ = part.Write([]byte("mine"))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, w.env.URL+"/graphql", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("x-api-key", w.ownerKey)
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			UploadFile struct{ ID, Status string }
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Data.UploadFile.Status != "COMPLETED" {
		t.Fatalf("upload: status %d, %+v, %v", res.StatusCode, out, err)
	}
	u, err := w.env.Client().Upload.Get(context.Background(), out.Data.UploadFile.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
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
