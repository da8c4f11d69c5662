package httpserver

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// TestScannerFollowsNetHTTP: on a stream of pipelined requests, however
// the reads split it, the scanner finds the same requests in the same order
// as net/http's own parser, with what each header block said about its body.
func TestScannerFollowsNetHTTP(t *testing.T) {
	t.Parallel()
	stream := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n\r\nGET /not-a-request HTTP/1" +
		"\r\n\r\n" + // stray line ends after a POST body, which net/http skips
		"DELETE /c?d=1 HTTP/1.1\r\nHost: x\r\ncontent-length:  3 \r\nX-Folded: a\r\n b\r\n\r\n\r\n\r" +
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" +
		"PUT /e HTTP/1.0\nContent-Length: 2\n\n{}" +
		"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /after-chunked HTTP/1.1\r\nHost: x\r\n\r\n"
	want := []framing{
		{method: "GET", target: "/a"},
		{method: "POST", target: "/b", contentLength: true},
		{method: "DELETE", target: "/c?d=1", contentLength: true},
		{method: "PUT", target: "/e", contentLength: true},
		{method: "POST", target: "/f", contentLength: true, transferEncoding: true},
	}

	// net/http agrees on the requests before the chunked one (after which
	// the connection is closed).
	br := bufio.NewReader(strings.NewReader(stream))
	for i, w := range want {
		if i > 0 && want[i-1].method == http.MethodPost {
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = br.Discard(n)
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("net/http, request %d: %v", i, err)
		}
		if req.Method == http.MethodOptions && req.RequestURI == "*" { // answered by net/http itself
			if req, err = http.ReadRequest(br); err != nil {
				t.Fatal(err)
			}
		}
		if req.Method != w.method || req.RequestURI != w.target {
			t.Fatalf("net/http, request %d: %s %s, want %s %s", i, req.Method, req.RequestURI, w.method, w.target)
		}
		_, _ = io.Copy(io.Discard, req.Body)
	}

	for _, split := range []string{"whole", "bytes", "random"} {
		s := &headerScanner{}
		rest := []byte(stream)
		for len(rest) > 0 {
			n := len(rest)
			switch split {
			case "bytes":
				n = 1
			case "random":
				n = min(1+rand.IntN(40), len(rest))
			}
			s.feed(rest[:n])
			rest = rest[n:]
		}
		for i, w := range want {
			got, ok := s.next()
			if !ok || got != w {
				t.Fatalf("%s: request %d = %+v (%v), want %+v", split, i, got, ok, w)
			}
		}
		if got, ok := s.next(); ok {
			t.Errorf("%s: a request after a chunked one was followed: %+v", split, got)
		}
	}
}
