package httpserver

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request smuggling: a request that carries both Content-Length and
// Transfer-Encoding is framed by Content-Length by some proxies and by the
// chunked encoding here, so the bytes one of them takes for a body the other
// takes for the next request. net/http serves such a request as chunked and
// deletes Content-Length from its headers, so a handler cannot see that both
// were sent. Listener therefore watches the raw bytes of each connection and
// notes, per request, which of the two headers its header block held;
// rejectAmbiguousFraming answers 400 and closes when it held both.
//
// To find where each header block starts the scanner follows bodies framed by
// Content-Length. It does not follow chunked bodies: a connection ends after
// any request with Transfer-Encoding, so nothing is ever framed after one.

// Listener wraps ln so that the server can see how each request was framed
// (see rejectAmbiguousFraming). Serve the handler of NewHandler through it.
func Listener(ln net.Listener) net.Listener { return framingListener{ln} }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, scanner: &headerScanner{}}, nil
}

// framingConn passes every byte the server reads through its scanner.
type framingConn struct {
	net.Conn
	scanner *headerScanner
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scanner.feed(p[:n])
	return n, err
}

// CloseWrite lets net/http half-close the connection after a final response,
// so that the client reads it before the connection is reset.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type scannerKey struct{}

// withScanner is the server's ConnContext: it hands each request the
// scanner of its connection.
func withScanner(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, scannerKey{}, fc.scanner)
	}
	return ctx
}

// framing is what a request's header block said about its body.
type framing struct {
	method, target                  string
	contentLength, transferEncoding bool
}

// maxScannedHeader is more than net/http reads of a header block before it
// answers 431 and closes the connection.
const maxScannedHeader = MaxHeaderBytes + 64<<10

// headerScanner follows the requests on one connection, in the order the
// server reads them, with the framing rules of net/http's server.
type headerScanner struct {
	mu       sync.Mutex
	block    []byte // the header block read so far
	skipBody int64  // bytes of the current body still to pass
	skipCRLF int    // stray CR or LF net/http skips after a POST
	stopped  bool   // after Transfer-Encoding or a block net/http rejects
	requests []framing
}

func (s *headerScanner) feed(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 && !s.stopped {
		if s.skipBody > 0 {
			n := min(s.skipBody, int64(len(p)))
			s.skipBody -= n
			p = p[n:]
			continue
		}
		if len(s.block) == 0 {
			for s.skipCRLF > 0 && len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
				s.skipCRLF--
				p = p[1:]
			}
			if len(p) == 0 {
				return
			}
			s.skipCRLF = 0
		}
		from := max(len(s.block)-2, 0)
		s.block = append(s.block, p...)
		end := headerEnd(s.block, from)
		if end < 0 {
			if len(s.block) > maxScannedHeader {
				s.stopped = true
			}
			return
		}
		p = p[len(p)-(len(s.block)-end):]
		s.endOfBlock(s.block[:end])
		s.block = s.block[:0]
	}
}

// headerEnd returns the index just past the empty line that ends a header
// block (a line ending, then "\n" or "\r\n"), searching from from, or -1.
func headerEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// endOfBlock notes the framing of one header block and sets up the skipping
// of its body. A block net/http would reject stops the scanner: the server
// closes that connection without serving it. It runs on every request, so
// it reads the block in place, line by line, copying out only the request
// line and Content-Length values.
func (s *headerScanner) endOfBlock(block []byte) {
	line, block := nextLine(block)
	method, rest, ok1 := strings.Cut(string(line), " ")
	target, _, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		s.stopped = true
		return
	}
	f := framing{method: method, target: target}
	var lengths []string
	for len(block) > 0 {
		line, block = nextLine(block)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || bytes.ContainsAny(name, " \t") {
			continue // an empty line, or one net/http rejects
		}
		isLength := bytes.EqualFold(name, []byte("Content-Length"))
		// Continuation lines (obs-fold) belong to this field's value.
		for len(block) > 0 && (block[0] == ' ' || block[0] == '\t') {
			line, block = nextLine(block)
			if isLength {
				value = append(append(value[:len(value):len(value)], ' '), line...)
			}
		}
		switch {
		case isLength:
			f.contentLength = true
			lengths = append(lengths, string(bytes.Trim(value, " \t")))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.transferEncoding = true
		}
	}
	if method != http.MethodOptions || target != "*" { // net/http answers "OPTIONS *" itself
		s.requests = append(s.requests, f)
	}
	s.skipCRLF = 0
	if method == http.MethodPost {
		s.skipCRLF = 4 // as net/http does, for old clients
	}
	if f.transferEncoding {
		s.stopped = true
		return
	}
	if len(lengths) > 0 {
		n, err := strconv.ParseUint(lengths[0], 10, 63)
		for _, l := range lengths[1:] {
			if l != lengths[0] {
				err = strconv.ErrSyntax
			}
		}
		if err != nil {
			s.stopped = true // net/http answers 400 and closes
			return
		}
		s.skipBody = int64(n)
	}
}

// nextLine splits b after its first line, which it returns without its
// line ending ("\n" or "\r\n").
func nextLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}

// stop stops the scanner: the connection serves no further request.
func (s *headerScanner) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
}

// next returns the framing of the oldest request not yet served.
func (s *headerScanner) next() (framing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return framing{}, false
	}
	f := s.requests[0]
	// Shifted in place, not resliced: the array is then reused for the
	// connection's next request instead of being allocated anew.
	s.requests = append(s.requests[:0], s.requests[1:]...)
	return f, true
}

// rejectAmbiguousFraming answers 400 and closes the connection when a
// request carried both Content-Length and Transfer-Encoding, and closes the
// connection after any chunked request (see the top of this file). It must
// be the outermost handler that may read the body.
func rejectAmbiguousFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scanner, ok := r.Context().Value(scannerKey{}).(*headerScanner)
		if !ok || r.ProtoMajor != 1 {
			next.ServeHTTP(w, r) // not served through Listener
			return
		}
		f, ok := scanner.next()
		switch {
		case !ok || f.method != r.Method || f.target != r.RequestURI:
			badFraming(w, "400 Bad Request: the request's framing could not be verified")
		case f.contentLength && f.transferEncoding:
			badFraming(w, "400 Bad Request: both Content-Length and Transfer-Encoding")
		case f.transferEncoding:
			w.Header().Set("Connection", "close")
			next.ServeHTTP(w, r)
		case r.Header.Get("Upgrade") != "":
			// What follows is a WebSocket's frames, or nothing: no request
			// is framed after an upgrade, refused or not.
			scanner.stop()
			w.Header().Set("Connection", "close")
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// badFraming answers 400, as net/http answers malformed requests, and reads
// nothing more from the connection: whatever follows the headers must not
// be taken for a body or a request.
func badFraming(w http.ResponseWriter, message string) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(message))
}
