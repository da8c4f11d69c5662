// Package faultproxy is an HTTP reverse proxy that fails on command, put
// between the service and a real S3 server to test outages.
package faultproxy

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

// Mode is how the proxy treats requests.
type Mode int32

// The modes.
const (
	Pass         Mode = iota // forward every request
	Refuse                   // drop the connection without answering, like a dead server
	Unavailable              // answer 503 SlowDown, like an overloaded S3
	RejectWrites             // answer 503 to PUT and POST, forward the rest
)

// Proxy forwards to a target until told to fail.
type Proxy struct {
	URL      string
	mode     atomic.Int32
	requests atomic.Int64
	observer atomic.Pointer[func(*http.Request)]
	failWhen atomic.Pointer[func(*http.Request) bool]
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
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
		default:
			forward.ServeHTTP(w, r)
		}
	}))
	p.URL = p.server.URL
	return p, nil
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
