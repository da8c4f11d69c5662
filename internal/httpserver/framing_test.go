package httpserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/testenv"
)

// clientPatience is how long a raw client waits for the server before the
// test fails: far longer than any bound the tests configure, so that a
// server that holds a connection fails the test quickly instead of hanging.
const clientPatience = 5 * time.Second

// dial opens a raw TCP connection to the service.
func dial(t *testing.T, env *testenv.Env) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(clientPatience)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// closedByServer reports whether the server closed conn (nothing more to
// read), failing the test if it is still open when the client gives up.
func closedByServer(t *testing.T, br *bufio.Reader) {
	t.Helper()
	extra, err := br.ReadByte()
	switch {
	case err == nil:
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("the server kept the connection and sent more: %q", append([]byte{extra}, rest...))
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("the connection was still open after %s", clientPatience)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), isReset(err):
	default:
		t.Fatalf("reading after the response: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestAmbiguousFramingRejected: a request carrying both Content-Length and
// Transfer-Encoding is framed differently by a proxy that trusts
// Content-Length; the server answers 400 and closes, so that nothing after
// the headers (here, a smuggled second request) is ever read as a request.
func TestAmbiguousFramingRejected(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	smuggled := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	for name, head := range map[string]string{
		"REST":          "DELETE /delete-upload-api HTTP/1.1\r\nHost: x\r\nX-Upload-Id: upl_x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GraphQL":       "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"lower case":    "POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\ntransfer-encoding: Chunked\r\n\r\n",
		"after another": "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn := dial(t, env)
			if _, err := io.WriteString(conn, head+"0\r\n\r\n"+smuggled); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			if name == "after another" { // the first request is fine
				if res.StatusCode != 200 {
					t.Fatalf("the request before: %d", res.StatusCode)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				if res, err = http.ReadResponse(br, nil); err != nil {
					t.Fatalf("no response: %v", err)
				}
			}
			_, _ = io.Copy(io.Discard, res.Body)
			if res.StatusCode != http.StatusBadRequest || !res.Close {
				t.Fatalf("got %d (Connection: %q), want 400 and the connection closed", res.StatusCode, res.Header.Get("Connection"))
			}
			closedByServer(t, br)
		})
	}

	// Chunked alone is unambiguous: it is served, and the connection ends
	// after it, so that nothing is ever framed after a chunked body.
	conn := dial(t, env)
	query := `{"query":"{ __typename }"}`
	_, _ = fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"%x\r\n%s\r\n0\r\n\r\n%s", len(query), query, smuggled)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("chunked request: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"__typename":"Query"`) {
		t.Fatalf("chunked request: %d %s", res.StatusCode, body)
	}
	closedByServer(t, br)
}
