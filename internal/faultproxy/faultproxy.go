// Package faultproxy is an HTTP reverse proxy that fails on command, put
// between the service and a real S3 server to test outages.
package faultproxy

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Mode is how the proxy treats requests.
type Mode int32

// The modes.
const (
	Pass          Mode = iota // forward every request
	Refuse                    // drop the connection without answering, like a dead server
	Unavailable               // answer 503 SlowDown, like an overloaded S3
	RejectWrites              // answer 503 to PUT and POST, forward the rest
	InternalError             // answer 500 InternalError
	Slow                      // forward after the delay set by SetDelay (or until the client gives up)
	Cut                       // forward, then send the client only the first half of S3's response and hang up
)

// Proxy forwards to a target until told to fail.
type Proxy struct {
	URL      string
	mode     atomic.Int32
	requests atomic.Int64
	observer atomic.Pointer[func(*http.Request)]
	failWhen atomic.Pointer[func(*http.Request) bool]
	failKey  atomic.Pointer[func(key string) bool]
	delay    atomic.Int64 // nanoseconds, for Slow
	server   *httptest.Server
}

// Start proxies to target on a loopback port.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{}
	forward := httputil.NewSingleHostReverseProxy(u)
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if observe := p.observer.Load(); observe != nil {
			(*observe)(r)
		}
		mode := Mode(p.mode.Load())
		if failWhen := p.failWhen.Load(); failWhen != nil && (*failWhen)(r) {
			mode = Unavailable
		}
		if mode == RejectWrites {
			mode = Pass
			if r.Method == http.MethodPut || r.Method == http.MethodPost {
				mode = Unavailable
			}
		}
		switch mode {
		case Refuse:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case Unavailable:
			writeError(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
		case InternalError:
			writeError(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		case Slow:
			select {
			case <-time.After(time.Duration(p.delay.Load())):
				forward.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		case Cut:
			cutHalfway(w, r, forward)
		case Pass:
			if failKey := p.failKey.Load(); failKey != nil && r.Method == http.MethodPost && r.URL.Query().Has("delete") {
				failSomeKeys(w, r, forward, *failKey)
				return
			}
			forward.ServeHTTP(w, r)
		default:
			forward.ServeHTTP(w, r)
		}
	}))
	p.URL = p.server.URL
	return p, nil
}

// SetDelay sets how long Slow holds each request.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, message)
}

// cutHalfway lets S3 act on the request, then sends the client only the
// first half of the raw response and closes the connection: the client
// cannot tell whether the request took effect.
func cutHalfway(w http.ResponseWriter, r *http.Request, forward http.Handler) {
	rec := httptest.NewRecorder()
	forward.ServeHTTP(rec, r)
	var raw bytes.Buffer
	_ = rec.Result().Write(&raw)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write(raw.Bytes()[:raw.Len()/2])
}

// FailKeys makes S3's answers to DeleteObjects report an error for every
// key for which f returns true, as S3 reports a key it could not delete.
// (The request itself is forwarded as it is: its signature covers its body.
// S3 may then have deleted such a key after all, as it may after a real
// error: a retry must find it gone and succeed.) nil stops it.
func (p *Proxy) FailKeys(f func(key string) bool) {
	if f == nil {
		p.failKey.Store(nil)
		return
	}
	p.failKey.Store(&f)
}

// failSomeKeys forwards a DeleteObjects request and adds an error for each
// key that must fail to S3's answer.
func failSomeKeys(w http.ResponseWriter, r *http.Request, forward http.Handler, fail func(string) bool) {
	body, err := io.ReadAll(r.Body)
	var req struct {
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if err != nil || xml.Unmarshal(body, &req) != nil {
		writeError(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed.")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	forward.ServeHTTP(rec, r)
	var errs strings.Builder
	for _, o := range req.Objects {
		if fail(o.Key) {
			fmt.Fprintf(&errs, "<Error><Key>%s</Key><Code>InternalError</Code><Message>injected</Message></Error>", o.Key)
		}
	}
	answer := rec.Body.String()
	if i := strings.LastIndex(answer, "</DeleteResult>"); rec.Code == http.StatusOK && i >= 0 {
		answer = answer[:i] + errs.String() + answer[i:]
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = io.WriteString(w, answer)
}

// SetMode changes how the following requests are treated.
func (p *Proxy) SetMode(m Mode) { p.mode.Store(int32(m)) }

// Observe calls f with every request that arrives from now on.
func (p *Proxy) Observe(f func(*http.Request)) { p.observer.Store(&f) }

// FailWhen answers 503 SlowDown to every request for which f returns true,
// whatever the mode; nil stops it.
func (p *Proxy) FailWhen(f func(*http.Request) bool) {
	if f == nil {
		p.failWhen.Store(nil)
		return
	}
	p.failWhen.Store(&f)
}

// Requests counts the requests the proxy has seen.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy.
func (p *Proxy) Close() { p.server.Close() }
