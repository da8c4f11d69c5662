package httpserver_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

// Bounds short enough for tests and far apart from the client's pace: a
// trickling client pauses trickleGap, a twentieth of the upload bound, and
// takes three times the body bound in all.
const (
	testBodyTimeout = 200 * time.Millisecond
	testUploadIdle  = 2 * time.Second
	trickleGap      = 50 * time.Millisecond
	tricklePieces   = 12
)

func boundedEnv(t *testing.T) *testenv.Env {
	return testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.RequestBodyTimeout = testBodyTimeout
		c.UploadBodyIdleTimeout = testUploadIdle
	}})
}

// TestSilentBodiesClosed: headers that announce a body, then silence. Every
// route closes the connection within its bound, also when it answers
// without reading the body (net/http would otherwise wait for the body to
// reuse the connection).
func TestSilentBodiesClosed(t *testing.T) {
	// Serial: it times the server's body bounds (hundreds of milliseconds).
	env := boundedEnv(t)
	_, key := env.NewUser()
	for _, c := range []struct {
		name, request string
		wantStatus    int // 0: any answer, or none
	}{
		{"REST, unauthenticated", "DELETE /delete-upload-api HTTP/1.1\r\nHost: x\r\nX-Upload-Id: upl_x\r\nContent-Length: 100\r\n\r\n", 401},
		{"REST", "DELETE /delete-upload-api HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key + "\r\nX-Upload-Id: upl_x\r\nContent-Length: 100\r\n\r\n", 404},
		{"GraphQL JSON", "POST /graphql HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":", 0},
		{"GraphQL JSON, chunked", "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"query\":\r\n", 0},
		{"GraphQL multipart", "POST /graphql HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key + "\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, env)
			if _, err := io.WriteString(conn, c.request); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("no answer and the connection still open after %s", clientPatience)
			}
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
			}
			if c.wantStatus != 0 && (err != nil || res.StatusCode != c.wantStatus) {
				t.Fatalf("got %v %v, want %d", res, err, c.wantStatus)
			}
			if err == nil {
				closedByServer(t, br)
			}
		})
	}
	if res := env.Do(http.MethodGet, "/healthz", nil, nil); res.Status != 200 {
		t.Errorf("healthz: %d", res.Status)
	}
}

// TestSlowBodies: an upload that trickles in, never pausing long, succeeds
// however long it takes in all; a GraphQL body that takes longer than its
// bound in all is cut off.
func TestSlowBodies(t *testing.T) {
	// Serial: it times the server's body bounds against a client's pace.
	env := boundedEnv(t)
	_, key := env.NewUser()

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($file: File!) { uploadFile(file: $file) { status size } }`,
		"variables": map[string]any{"file": nil},
	})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0": ["variables.file"]}`)
	part, _ := mw.CreateFormFile("0", "slow.txt")
	content := bytes.Repeat([]byte("slow but steady\n"), 400)
	_, _ = part.Write(content)
	_ = mw.Close()
	res := trickle(t, env, "POST /graphql", key, mw.FormDataContentType(), body.Bytes())
	if want := fmt.Sprintf(`{"data":{"uploadFile":{"status":"COMPLETED","size":%d}}}`, len(content)); res.Status != 200 || res.Body != want {
		t.Fatalf("slow upload: %d %s", res.Status, res.Body)
	}

	query := []byte(`{"query":"{ viewer { email } }","variables":{"pad":"` + strings.Repeat("x", 600) + `"}}`)
	res = trickle(t, env, "POST /graphql", key, "application/json", query)
	if res.Status == 200 && strings.Contains(res.Body, `"email"`) {
		t.Fatalf("a GraphQL body trickling for %s was read whole: %d %s", tricklePieces*trickleGap, res.Status, res.Body)
	}
}

// trickle sends body in tricklePieces pieces, trickleGap apart, and reads
// the answer, if any (Status 0 when the server hung up).
func trickle(t *testing.T, env *testenv.Env, requestLine, key, contentType string, body []byte) testenv.Response {
	t.Helper()
	conn := dial(t, env)
	fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", requestLine, key, contentType, len(body))
	size := (len(body) + tricklePieces - 1) / tricklePieces
	for rest := body; len(rest) > 0; rest = rest[min(size, len(rest)):] {
		time.Sleep(trickleGap)
		if _, err := conn.Write(rest[:min(size, len(rest))]); err != nil {
			break // the server gave up on the body
		}
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no answer after %s", clientPatience)
	}
	if err != nil {
		return testenv.Response{}
	}
	b, _ := io.ReadAll(res.Body)
	return testenv.Response{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// TestBoundsEndWithTheBody: a request's work may outlast its body's bound
// (here, S3 answers slowly). The bound must not cut net/http's read-ahead
// for the next request, which starts when the body ends (at once without a
// body): that cancels the connection's context, and so the request's and
// those of every later request on the connection (the client reuses it).
func TestBoundsEndWithTheBody(t *testing.T) {
	// Serial: it times the server's body bounds.
	env := boundedEnv(t)
	_, key := env.NewUser()
	viaREST := env.MustUpload(key, "a.txt", []byte("a"))
	viaGraphQL := env.MustUpload(key, "b.txt", []byte("b"))
	env.S3.SetMode(faultproxy.Slow)

	env.S3.SetDelay(testUploadIdle + 500*time.Millisecond)
	res := env.UploadFile(key, "c.txt", "text/plain", []byte("c"))
	var uploaded struct{ UploadFile testenv.UploadedFile }
	if len(res.Errors) > 0 || res.Decode(&uploaded) != nil || uploaded.UploadFile.Status != "COMPLETED" {
		t.Errorf("upload while S3 is slower than the upload bound: %d %+v %s", res.Status, res.Errors, res.Data)
	}

	// Slower than the body bound, faster than the delete's inline purge.
	env.S3.SetDelay(testBodyTimeout + 300*time.Millisecond)
	if rest := env.DeleteREST(key, viaREST.ID); rest.Status != 200 {
		t.Errorf("REST delete: %d %s", rest.Status, rest.Body)
	}
	res = env.GraphQL(key, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": viaGraphQL.ID})
	if len(res.Errors) > 0 || !strings.Contains(string(res.Data), viaGraphQL.ID) {
		t.Errorf("GraphQL delete: %d %+v %s", res.Status, res.Errors, res.Data)
	}
	env.S3.SetMode(faultproxy.Pass)
	for _, key := range []string{viaREST.ObjectKey, viaGraphQL.ObjectKey} {
		if env.ObjectExists(key) {
			t.Errorf("object %s was left to the purger: a request's context was cancelled", key)
		}
	}
}
