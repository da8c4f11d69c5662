package httpserver

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// boundBodyReads bounds how long reading a request's body may take, so that
// a client that announces a body and sends nothing cannot hold a connection
// (and a file descriptor) forever. http.Server's ReadTimeout cannot do it: it
// would cut large uploads on slow links too.
//
// A body other than an upload must arrive within bodyTimeout of the
// headers. An upload (uploadFile, a multipart POST /graphql) may take as long
// as it needs, provided no pause between its bytes lasts uploadIdle. The
// deadline is the connection's, so it also bounds what net/http reads after
// the handler has answered without reading the body (it reads up to 256 KiB
// of it to reuse the connection): the connection is closed instead.
func boundBodyReads(bodyTimeout, uploadIdle time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Without a body there is nothing to bound, and a deadline would cut
		// the read-ahead net/http starts at once for the client's next
		// request, cancelling the connection's context (and this request's).
		if r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		timeout, idle := bodyTimeout, time.Duration(0)
		if isUpload(r) {
			timeout, idle = uploadIdle, uploadIdle
		}
		rc := http.NewResponseController(w)
		if timeout <= 0 || rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, idle: idle}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read whole and, for
// uploads, pushes it back each time bytes arrive.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		// net/http now reads ahead for the next request while the handler
		// works, with no deadline; one set here (the last read may bring
		// bytes too) would cut that read and cancel the connection's
		// context. Other errors keep the deadline: after a timeout, nothing
		// more may be read from the connection.
		_ = b.rc.SetReadDeadline(time.Time{})
	case n > 0 && b.idle > 0:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}

// isUpload reports whether r is a GraphQL multipart request: the only kind
// that carries files, and large bodies.
func isUpload(r *http.Request) bool {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && r.URL.Path == "/graphql" && mediaType == "multipart/form-data"
}
