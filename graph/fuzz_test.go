package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/gqllimit"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/testenv"
)

// Callers of FuzzDeleteUploadInput, chosen by the input's caller byte
// modulo 3.
const (
	callerOwner     = iota // owns {mine}
	callerIntruder         // a valid key of a user who owns nothing
	callerAnonymous        // no key
)

// maxFuzzRequest keeps requests small enough to be quick; size limits have
// their own tests.
const maxFuzzRequest = 64 << 10

// expectedCodes are the extensions.code values a caller may see for any
// input; INTERNAL_SERVER_ERROR is never one of them.
var expectedCodes = map[string]bool{
	graph.CodeUnauthenticated:   true,
	graph.CodeBadUserInput:      true,
	graph.CodeNotFound:          true,
	"GRAPHQL_VALIDATION_FAILED": true,
	"GRAPHQL_PARSE_FAILED":      true,
	// Limits an arbitrary document can run into.
	gqllimit.ErrCode:            true,
	gqllimit.ErrCodeFields:      true,
	"COMPLEXITY_LIMIT_EXCEEDED": true,
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// FuzzDeleteUploadInput passes fuzzed ids to the deleteUpload mutation as
// its $id variable, as the owner, as another user or anonymously, through
// the real HTTP server, and holds every answer to the documented outcome:
// never a 5xx, valid JSON, the exact error code and message for the input
// (never INTERNAL_SERVER_ERROR), and a delete only of the owner's own
// upload. Another user's upload survives every input.
func FuzzDeleteUploadInput(f *testing.F) {
	w := newFuzzWorld(f)
	seeds := []struct {
		caller   uint8
		uploadID string
	}{
		{callerOwner, testenv.PhMine}, // 200, deleted
		{callerOwner, testenv.PhGone}, // again: NOT_FOUND
		{callerOwner, " \t" + testenv.PhMine + "\n"},
		{callerOwner, testenv.PhMine + "\u00a0"},
		{callerOwner, testenv.PhMineUp},
		{callerOwner, testenv.PhVictim},
		{callerOwner, ""},
		{callerOwner, "   "},
		{callerOwner, "upl_4c0a85f67aa74ecb95a9494a96e4a327"}, // the spec's example
		{callerOwner, "upl_00000000000000000000000000000000"},
		{callerOwner, "upl_" + strings.Repeat("a", 1000)},
		{callerOwner, "upl_ünïcødé-🔑"},
		{callerOwner, "' OR 1=1 --"},
		{callerOwner, testenv.PhMine + "' OR owner_id IS NOT NULL --"},
		{callerOwner, "upl_%"},
		{callerOwner, `") { id } } mutation { deleteUpload(id: "` + testenv.PhVictim},
		{callerOwner, "\x00" + testenv.PhMine},
		{callerOwner, "\xff\xfe"},
		{callerOwner, "VXBsb2FkOnVwbF8w"}, // base64, as Relay global ids look
		{callerIntruder, testenv.PhMine},
		{callerIntruder, testenv.PhVictim},
		{callerIntruder, ""},
		{callerAnonymous, testenv.PhMine},
		{callerAnonymous, ""},
	}
	for _, s := range seeds {
		f.Add(s.caller, s.uploadID)
	}
	f.Fuzz(func(t *testing.T, caller uint8, uploadID string) {
		w.checkDeleteInput(t, int(caller%3), w.Expand(uploadID))
	})
}

// FuzzGraphQLDocument posts fuzzed GraphQL documents as the owner. Whatever
// the text, the server answers below 500 with a JSON object whose errors
// carry a known code (never INTERNAL_SERVER_ERROR), never shows anything of
// another user, and deletes nothing but the owner's own upload.
func FuzzGraphQLDocument(f *testing.F) {
	w := newFuzzWorld(f)
	for _, doc := range []string{
		`mutation { deleteUpload(id: "{mine}") { deletedUploadId message } }`,
		`mutation { deleteUpload(id: "{victim}") { deletedUploadId message } }`,
		`mutation { a: deleteUpload(id: "{mine}") { message } b: deleteUpload(id: "{mine}") { message } }`,
		`mutation { deleteUpload(id: 12345) { message } }`,
		`mutation { deleteUpload(id: null) { message } }`,
		`mutation { deleteUpload { message } }`,
		`mutation($id: ID!) { deleteUpload(id: $id) { message } }`,
		`{ upload(id: "{victim}") { id filename size status } }`,
		`{ node(id: "{victim}") { id ... on Upload { filename } } }`,
		`{ viewer { id email uploads(first: 10) { totalCount edges { node { id filename } } } } }`,
		// Arguments that parse and validate but do not coerce or contradict
		// each other: the caller's mistake, never INTERNAL_SERVER_ERROR.
		`{ viewer { uploads(first: -1) { totalCount } } }`,
		`{ viewer { uploads(first: 1, last: 1) { totalCount } } }`,
		`{ viewer { uploads(after: "not a cursor") { totalCount } } }`,
		`{ viewer { uploads(where: {createdAtGT: "yesterday"}) { totalCount } } }`,
		`{ __type(name: "Upload") { fields { name } } }`,
		`{ viewer { ...F } } fragment F on User { ...F }`,
		`{ viewer { uploads { edges { node { owner { uploads { edges { node { owner { id } } } } } } } } } }`,
		`subscription { viewer { id } }`,
		`{ viewer { id `,
		`query A { viewer { id } } query A { viewer { id } }`,
		"\"\"\"\x00",
		``,
	} {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		w.checkDocument(t, w.Expand(doc))
	})
}

// fuzzWorld is the service under fuzzing and a model of its state.
type fuzzWorld struct {
	*testenv.Cast
	env    *testenv.Env
	client *http.Client
	// secrets are strings of the victim's that no response may contain.
	secrets []string
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	env := testenv.New(f, testenv.Options{})
	transport := &http.Transport{MaxIdleConnsPerHost: 4}
	f.Cleanup(transport.CloseIdleConnections)
	cast := env.NewCast()
	return &fuzzWorld{
		Cast:    cast,
		env:     env,
		client:  &http.Client{Transport: transport, Timeout: 30 * time.Second},
		secrets: []string{cast.Victim.Filename, cast.Victim.ObjectKey, cast.VictimUser.ID, *cast.VictimUser.Email},
	}
}

// gqlResponse is a GraphQL response as sent.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

func (w *fuzzWorld) checkDeleteInput(t *testing.T, caller int, uploadID string) {
	body, err := json.Marshal(map[string]any{
		"query":     `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId message } }`,
		"variables": map[string]any{"id": uploadID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > maxFuzzRequest {
		t.Skip("request too large")
	}
	// encoding/json replaces invalid UTF-8: the server sees this id.
	var sent struct{ Variables struct{ ID string } }
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	apiKey := map[int]string{callerOwner: w.OwnerKey, callerIntruder: w.IntruderKey}[caller]
	status, res, raw := w.post(t, apiKey, body)
	checkCodes(t, res, raw)

	id := strings.Trim(sent.Variables.ID, " \t\n\v\f\r") // ASCII's whitespace only: ids are ASCII
	wantCode, wantMessage, wantData := "", "", "null"
	switch {
	case strings.ContainsRune(sent.Variables.ID, 0) || len(sent.Variables.ID) > httpserver.MaxInputStringBytes:
		// Refused with the whole operation, before any resolver runs: a
		// request error, whose response has no data entry.
		wantCode, wantMessage, wantData = graph.CodeBadUserInput, gqllimit.InputsMessage(httpserver.MaxInputStringBytes, httpserver.MaxInputDepth), ""
	case caller == callerAnonymous:
		wantCode, wantMessage = graph.ErrUnauthorized.Code, graph.ErrUnauthorized.Message
	case id == "":
		wantCode, wantMessage = graph.ErrMissingUploadID.Code, graph.ErrMissingUploadID.Message
	case caller == callerOwner && id == w.Mine.ID:
	default:
		wantCode, wantMessage = graph.ErrUploadNotFound.Code, graph.ErrUploadNotFound.Message
	}
	if status != http.StatusOK {
		t.Errorf("id %q: status %d, want 200\n%s", uploadID, status, raw)
	}
	if wantCode != "" {
		if len(res.Errors) != 1 || res.Errors[0].Extensions["code"] != wantCode || res.Errors[0].Message != wantMessage {
			t.Errorf("caller %d, id %q: got %s\nwant one error %s %q", caller, uploadID, raw, wantCode, wantMessage)
		}
		if string(res.Data) != wantData {
			t.Errorf("id %q: data %q with an error, want %q", uploadID, res.Data, wantData)
		}
		w.Settle(t, false)
		return
	}
	var data struct {
		DeleteUpload struct{ DeletedUploadID, Message string }
	}
	if len(res.Errors) > 0 || json.Unmarshal(res.Data, &data) != nil ||
		data.DeleteUpload.DeletedUploadID != id || data.DeleteUpload.Message != graph.DeletedMessage(id) {
		t.Errorf("owner deleting %q: got %s, want success", uploadID, raw)
	}
	w.Settle(t, true)
}

func (w *fuzzWorld) checkDocument(t *testing.T, doc string) {
	body, err := json.Marshal(map[string]any{"query": doc})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > maxFuzzRequest {
		t.Skip("request too large")
	}
	_, res, raw := w.post(t, w.OwnerKey, body)
	for _, secret := range w.secrets {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the response shows another user's %q:\n%s", secret, raw)
		}
	}
	// Only the owner's own upload may have gone, and then completely.
	_, err = w.env.Client().Upload.Get(context.Background(), w.Mine.ID)
	if err != nil && !ent.IsNotFound(err) {
		t.Fatal(err)
	}
	w.Settle(t, ent.IsNotFound(err))
	checkCodes(t, res, raw)
}

// post sends a GraphQL request body and checks what holds for every
// answer: below 500, a JSON object.
func (w *fuzzWorld) post(t *testing.T, apiKey string, body []byte) (int, gqlResponse, []byte) {
	req, err := http.NewRequest(http.MethodPost, w.env.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("x-api-key", apiKey)
	}
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql %s: %v", body, err)
	}
	raw, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if res.StatusCode >= 500 {
		t.Errorf("POST /graphql %s: status %d\n%s", body, res.StatusCode, raw)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST /graphql %s: response is not a JSON object (%v):\n%s", body, err, raw)
	}
	return res.StatusCode, out, raw
}

// checkCodes holds every error to the codes a caller may see.
func checkCodes(t *testing.T, res gqlResponse, raw []byte) {
	t.Helper()
	for _, e := range res.Errors {
		code, _ := e.Extensions["code"].(string)
		switch {
		case code == graph.CodeInternal:
			t.Errorf("INTERNAL_SERVER_ERROR for a caller's input:\n%s", raw)
		case !expectedCodes[code]:
			t.Errorf("error %q with unexpected code %q:\n%s", e.Message, code, raw)
		}
	}
}
