// Package embeds3 runs an S3-compatible server in process over files in a
// directory, so that the service needs no S3 account to run. The service
// talks to it over loopback HTTP with the same aws-sdk-go-v2 client it uses
// for AWS, so there is one code path for every object store.
package embeds3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Credentials the embedded server accepts. It does not check signatures: it
// listens on loopback only.
const (
	AccessKeyID     = "embedded"
	SecretAccessKey = "embedded-secret"
)

// Server is a running embedded S3 endpoint.
type Server struct {
	URL  string
	http *http.Server
}

// Start serves the objects stored under dir on a loopback port.
func Start(dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	srv := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic("embedded s3: " + err.Error())
		}
	}()
	return &Server{URL: "http://" + ln.Addr().String(), http: srv}, nil
}

// Close stops the server, letting requests in flight finish.
func (s *Server) Close(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}
