//go:build soak

// Package soak holds the long-running tests whose figures the issue tracker
// asks for: an S3 outage under load and a server killed mid-load. They run
// with `go test -tags soak -v ./internal/soak/` (from .ci/run), and print
// lines starting with FIGURE.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/idempotency"
)

// httpClient has a timeout so that a request to a killed server fails
// instead of hanging.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// uploadOne stores a small file through GraphQL and returns its id.
func uploadOne(baseURL, apiKey string, n int) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("operations", `{"query":"mutation($f: File!) { uploadFile(file: $f) { id status } }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	part, _ := mw.CreateFormFile("0", fmt.Sprintf("file-%d.txt", n))
	fmt.Fprintf(part, "content of file %d\n", n)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("x-api-key", apiKey)
	res, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			UploadFile struct{ ID, Status string }
		}
		Errors []any
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return "", err
	}
	if out.Data.UploadFile.Status != "COMPLETED" {
		return "", fmt.Errorf("upload %d: status %q, errors %v", n, out.Data.UploadFile.Status, out.Errors)
	}
	return out.Data.UploadFile.ID, nil
}

// uploadMany stores n files with `workers` concurrent callers.
func uploadMany(t *testing.T, baseURL, apiKey string, n, workers int) []string {
	t.Helper()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id, err := uploadOne(baseURL, apiKey, i)
				if err != nil {
					failed.Store(err)
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("seeding uploads: %v", err)
	}
	return ids
}

// deleteREST calls the REST endpoint once.
func deleteREST(baseURL, apiKey, uploadID string) (int, string, error) {
	a, err := deleteRESTWithKey(baseURL, apiKey, uploadID, "")
	return a.status, a.body, err
}

// restAnswer is what a REST delete was answered.
type restAnswer struct {
	status   int
	body     string
	replayed bool // Idempotent-Replayed: true, the stored answer of an earlier try
}

// deleteRESTWithKey calls the REST endpoint once, sending idempotencyKey
// as its Idempotency-Key unless it is "".
func deleteRESTWithKey(baseURL, apiKey, uploadID, idempotencyKey string) (restAnswer, error) {
	req, _ := http.NewRequest(http.MethodDelete, baseURL+"/delete-upload-api", nil)
	req.Header.Set("x-api-key", apiKey)
	req.Header.Set("x-upload-id", uploadID)
	if idempotencyKey != "" {
		req.Header.Set(idempotency.Header, idempotencyKey)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return restAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return restAnswer{status: res.StatusCode, body: string(b), replayed: res.Header.Get(idempotency.ReplayedHeader) == "true"}, err
}

// server is the service's binary, run as a separate process.
type server struct {
	t       *testing.T
	bin     string
	addr    string
	dataDir string
	env     []string
	cmd     *exec.Cmd
	log     *os.File
	done    chan error
}

// buildServer compiles the service once per test binary.
var buildServer = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "uploads-soak-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "uploads")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func newServer(t *testing.T, extraEnv ...string) *server {
	t.Helper()
	bin, err := buildServer()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, bin: bin, addr: addr, dataDir: filepath.Join(dir, "data"), log: log}
	s.env = append(os.Environ(), "ADDR="+addr, "DATA_DIR="+s.dataDir, "LOG_LEVEL=warn")
	s.env = append(s.env, extraEnv...)
	t.Cleanup(func() { s.stop(); log.Close() })
	return s
}

func (s *server) url() string { return "http://" + s.addr }

// start runs the binary and waits until it answers /healthz.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin)
	s.cmd.Env = s.env
	s.cmd.Stdout = io.Discard // the first start prints the demo key; not needed
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := httpClient.Get(s.url() + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("server did not come up; see %s", s.log.Name())
}

// kill ends the process at once, as a crash or an OOM kill would.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop asks the process to shut down cleanly.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.kill()
	}
	s.cmd = nil
}

// command runs a management command of the binary with the server's settings.
func (s *server) command(args ...string) []byte {
	s.t.Helper()
	cmd := exec.CommandContext(context.Background(), s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && args[0] == "reconcile" && exit.ExitCode() == 1 {
		return out // drift found: the report says what
	}
	if err != nil {
		var stderr []byte
		if exit != nil {
			stderr = exit.Stderr
		}
		s.t.Fatalf("%v: %v: %s", args, err, stderr)
	}
	return out
}

// newUser creates a user with the binary's command and returns its id and key.
func (s *server) newUser(email string) (string, string) {
	var created struct {
		UserID string `json:"user_id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(s.command("users", "create", "--email", email, "--json"), &created); err != nil {
		s.t.Fatal(err)
	}
	return created.UserID, created.APIKey
}
