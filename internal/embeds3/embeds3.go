// Package embeds3 runs an S3-compatible server in process over files in a
// directory, so that the service needs no S3 account to run. The service
// talks to it over loopback HTTP with the same aws-sdk-go-v2 client it uses
// for AWS, so there is one code path for every object store.
//
// gofakes3 speaks S3; the files are kept by store, which writes every object
// atomically: an interrupted PUT or a killed process leaves nothing visible.
package embeds3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// Credentials the embedded server accepts. It does not check signatures: it
// listens on loopback only.
const (
	AccessKeyID     = "embedded"
	SecretAccessKey = "embedded-secret"
)

// Server is a running embedded S3 endpoint.
type Server struct {
	URL      string
	http     *http.Server
	store    *store
	staging  *os.File // its lock tells other servers over the directory this one is alive
	stopping sync.Once
}

// Start serves the objects stored under dir on a loopback port.
func Start(dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	backend, err := newStore(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	staging, err := backend.openStaging()
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		staging.Close()
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	srv := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}
	backend.startFreeing()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic("embedded s3: " + err.Error())
		}
	}()
	return &Server{URL: "http://" + ln.Addr().String(), http: srv, store: backend, staging: staging}, nil
}

// Close stops the server, letting requests in flight finish until ctx is
// done, and removes the files of the objects deleted. If ctx ends first,
// the server keeps its hold on staging until the process exits, so that
// another server starting alone does not empty staging under the requests
// still running; files of deletes they answer wait there for the next
// start.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.stopping.Do(s.store.stopFreeing)
	if err == nil {
		s.staging.Close()
	}
	return err
}
