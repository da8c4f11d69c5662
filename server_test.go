package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/pflag"

	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/objectstore"
)

// cli runs the binary's entry point as a user would, with DATA_DIR set.
func cli(t *testing.T, dataDir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, envOf(map[string]string{"DATA_DIR": dataDir}), &out, &errOut)
	return out.String(), errOut.String(), err
}

// printed is what a command printed as JSON: its string fields (keys also
// print their scopes, a list, and whether they have all of them).
type printed map[string]string

func (p *printed) UnmarshalJSON(b []byte) error {
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*p = printed{}
	for k, v := range all {
		if s, ok := v.(string); ok {
			(*p)[k] = s
		}
	}
	return nil
}

func TestManagementCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	out, _, err := cli(t, dir, "users", "create", "--email", "Ada@Example.com", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var user printed
	if err := json.Unmarshal([]byte(out), &user); err != nil {
		t.Fatalf("users create --json printed %q: %v", out, err)
	}
	if !strings.HasPrefix(user["user_id"], "usr_") || !strings.HasPrefix(user["api_key"], "ukey_") || user["email"] != "ada@example.com" {
		t.Errorf("users create: %v", user)
	}

	out, _, err = cli(t, dir, "keys", "create", "--user", user["user_id"], "--json")
	if err != nil {
		t.Fatal(err)
	}
	var key printed
	if err := json.Unmarshal([]byte(out), &key); err != nil || !strings.HasPrefix(key["api_key"], "ukey_") || key["user_id"] != user["user_id"] {
		t.Fatalf("keys create: %q %v", out, err)
	}

	out, _, err = cli(t, dir, "keys", "revoke", "--id", key["api_key_id"])
	if err != nil || !strings.Contains(out, "Revoked API key "+key["api_key_id"]) {
		t.Errorf("keys revoke: %q %v", out, err)
	}

	for _, bad := range [][]string{
		{"users", "create"},
		{"users", "create", "--email", "not-an-address"},
		{"users", "create", "--email", "ada@example.com"},
		{"keys", "create", "--user", "usr_00000000000000000000000000000000"},
		{"keys", "revoke", "--id", "key_00000000000000000000000000000000"},
		{"users", "delete"},
		{"users", "delete", "--id", "usr_00000000000000000000000000000000"},
	} {
		if out, _, err := cli(t, dir, bad...); err == nil {
			t.Errorf("%v succeeded: %q", bad, out)
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	var cfg config.Config
	settings := config.Register(fs, &cfg, config.All)
	if err := fs.Parse([]string{"--addr", ":9999"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ADDR": ":1111", "S3_BUCKET": "from-env", "PURGE_POLL_INTERVAL": "3s"}
	if err := config.ApplyEnv(fs, settings, envOf(env)); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9999" || cfg.S3Bucket != "from-env" || cfg.PurgePollInterval.String() != "3s" || cfg.S3Region != "us-east-1" {
		t.Errorf("config = %+v", cfg)
	}
	env["MAX_UPLOAD_SIZE"] = "lots"
	if err := config.ApplyEnv(fs, settings, envOf(env)); err == nil || !strings.Contains(err.Error(), "MAX_UPLOAD_SIZE=lots: want a whole number of bytes") {
		t.Errorf("bad MAX_UPLOAD_SIZE: err = %v", err)
	}
}

// TestSettingsInScope: a command offers only the settings it uses, and the
// others keep their defaults.
func TestSettingsInScope(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	var cfg config.Config
	settings := config.Register(fs, &cfg, config.ForDatabase)
	if len(settings) != 3 || fs.Lookup("data-dir") == nil || fs.Lookup("database-url") == nil || fs.Lookup("database-session-url") == nil || fs.Lookup("addr") != nil {
		t.Errorf("database settings: %+v", settings)
	}
	// The issuer and audience go to the commands that link identities, and
	// to no command that reaches the bucket (it would fetch the keys).
	fs = pflag.NewFlagSet("", pflag.ContinueOnError)
	settings = config.Register(fs, &cfg, config.ForDatabase|config.ForIdentities)
	if len(settings) != 5 || fs.Lookup("auth-issuer") == nil || fs.Lookup("auth-audience") == nil || fs.Lookup("auth-create-users") != nil {
		t.Errorf("database and identity settings: %+v", settings)
	}
	fs = pflag.NewFlagSet("", pflag.ContinueOnError)
	config.Register(fs, &cfg, config.ForDatabase|config.ForBucket|config.ForDeletes)
	if fs.Lookup("auth-issuer") != nil {
		t.Error("a command that reaches the bucket takes AUTH_ISSUER")
	}
	if defaults := config.Defaults(); cfg.RateLimit != defaults.RateLimit || cfg.UploadTimeout != defaults.UploadTimeout || cfg.LogFormat != "json" {
		t.Errorf("settings out of scope lost their defaults: %+v", cfg)
	}
}

// TestFirstStart runs the service on embedded defaults as a newcomer would:
// it seeds a demo user, prints a curl line that works, shuts down cleanly on
// a signal, and does not seed again on the next start.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	out, _ := serveFor(t, dir, addr, func() {})
	key := regexp.MustCompile(`x-api-key: (ukey_[0-9a-f]+)`).FindStringSubmatch(out)
	id := regexp.MustCompile(`x-upload-id: (upl_[0-9a-f]+)`).FindStringSubmatch(out)
	if key == nil || id == nil || !strings.Contains(out, "http://"+addr+"/") {
		t.Fatalf("first start printed no usable curl line or playground URL:\n%s", out)
	}
	var status int
	var body string
	again, _ := serveFor(t, dir, addr, func() {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/delete-upload-api", nil)
		req.Header.Set("x-api-key", key[1])
		req.Header.Set("x-upload-id", id[1])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		status, body = res.StatusCode, string(b)
	})
	if want := fmt.Sprintf(`{"message":"Upload %s deleted successfully"}`, id[1]); status != 200 || body != want {
		t.Errorf("the printed curl line got %d %s", status, body)
	}
	if strings.Contains(again, "First start") {
		t.Error("the demo was seeded again on the second start")
	}
}

// serveFor runs the server until it answers /healthz, calls during, then
// stops it as SIGTERM would and returns what it printed on stdout and
// stderr.
func serveFor(t *testing.T, dataDir, addr string, during func()) (stdout, stderr string) {
	t.Helper()
	return serveWith(t, map[string]string{"DATA_DIR": dataDir, "ADDR": addr}, nil, during)
}

// serveWith is serveFor with any environment and arguments; env must set
// ADDR.
func serveWith(t *testing.T, env map[string]string, args []string, during func()) (stdout, stderr string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, envOf(env), &out, &errOut) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + env["ADDR"] + "/healthz")
		if err == nil && res.StatusCode == 200 {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("server did not come up: %v\n%s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	during()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("server exited with %v\n%s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

// syncBuffer is a bytes.Buffer that the server writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// envOf is a lookupEnv over a map.
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// TestDataDirPermissions: in a data directory other users can read, every
// file and directory the service creates (the database, its -wal and -shm
// files, the embedded bucket's objects) is its owner's alone, and start-up
// warns about the directory.
func TestDataDirPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var exposed []string
	files := 0
	_, stderr := serveFor(t, dir, freeAddr(t), func() { // while the database is open
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || path == dir {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				files++
			}
			if perm := info.Mode().Perm(); perm&0o077 != 0 {
				rel, _ := filepath.Rel(dir, path)
				exposed = append(exposed, fmt.Sprintf("%s %#o", rel, perm))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if files < 5 { // uploads.db, -wal, -shm, two demo objects
		t.Errorf("found only %d files", files)
	}
	if len(exposed) > 0 {
		t.Errorf("other users can access: %s", strings.Join(exposed, ", "))
	}
	if !strings.Contains(stderr, `"level":"WARN"`) || !strings.Contains(stderr, "data directory") || !strings.Contains(stderr, `"mode":"0755"`) {
		t.Errorf("no warning about the data directory in the logs:\n%s", stderr)
	}
}

// TestReconcileCommand plants an orphan in the embedded bucket of a stopped
// service and finds it with `reconcile --json`, then queues it with --repair.
func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serveFor(t, dir, freeAddr(t), func() {}) // seeds two demo uploads
	plantObject(t, dir, "stray.bin")
	time.Sleep(10 * time.Millisecond) // older than the 1ms grace period below
	for _, args := range [][]string{{"reconcile", "--json", "--grace", "1ms"}, {"reconcile", "--json", "--grace", "1ms", "--repair"}} {
		out, _, err := cli(t, dir, args...)
		if !errors.Is(err, errDrift) {
			t.Fatalf("%v: %v, want drift", args, err)
		}
		var report struct {
			OrphanedObjects []struct {
				Key    string `json:"key"`
				Queued bool   `json:"queued"`
			} `json:"orphaned_objects"`
			MissingObjects []any `json:"missing_objects"`
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("%v printed %q: %v", args, out, err)
		}
		repair := len(args) == 5
		if len(report.OrphanedObjects) != 1 || report.OrphanedObjects[0].Key != "stray.bin" ||
			report.OrphanedObjects[0].Queued != repair || len(report.MissingObjects) != 0 {
			t.Errorf("%v: %s", args, out)
		}
	}
}

// TestUsersDeleteCommand: erasing the demo user removes their uploads'
// records and objects, their keys and the user, and says how many.
func TestUsersDeleteCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serveFor(t, dir, freeAddr(t), func() {}) // seeds a demo user with two uploads
	client, err := app.OpenDatabase(context.Background(), &config.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	demo := client.User.Query().OnlyX(context.Background())
	// An answer kept for the user's retries (it names their uploads).
	client.IdempotencyKey.Create().SetUserID(demo.ID).SetKey("k").SetFingerprint("f").SetLockedUntil(time.Now()).SaveX(context.Background())
	client.Close()

	out, _, err := cli(t, dir, "users", "delete", "--id", demo.ID, "--json")
	if err != nil {
		t.Fatalf("users delete: %v", err)
	}
	// The last line keeps what users delete --json printed before it ran
	// as a job, beside the job's final state; the lines before it are the
	// job's progress.
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("users delete printed %q: %v", out, err)
	}
	for field, want := range map[string]any{
		"user_id": demo.ID, "uploads_deleted": 2.0, "keys_revoked": 1.0, "identities_removed": 0.0, "status": "SUCCEEDED",
	} {
		if last[field] != want {
			t.Errorf("users delete's last line: %s = %v, want %v (all: %q)", field, last[field], want, out)
		}
	}
	if out, _, err := cli(t, dir, "reconcile", "--json"); err != nil || !strings.Contains(out, `"objects_scanned":0`) {
		t.Errorf("after the erasure the bucket is not empty: %s %v", out, err)
	}
	client, err = app.OpenDatabase(context.Background(), &config.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if n := client.IdempotencyKey.Query().CountX(context.Background()); n != 0 {
		t.Errorf("%d idempotency keys left after the erasure", n)
	}
	client.Close()
	if out, _, err := cli(t, dir, "users", "delete", "--id", demo.ID); err != nil || !strings.Contains(out, "erased already, by job "+last["job_id"].(string)) {
		t.Errorf("erasing again: %q %v, want it to say which job erased them", out, err)
	}
	if _, _, err := cli(t, dir, "users", "delete", "--id", "usr_00000000000000000000000000000000"); err == nil || !strings.Contains(err.Error(), "no such user") {
		t.Errorf("erasing a user who never was: %v, want a clear error", err)
	}
}

// plantObject writes an object into a stopped service's embedded bucket
// through S3, as a stray upload would have.
func plantObject(t *testing.T, dataDir, key string) {
	t.Helper()
	srv := startEmbeddedS3(t, dataDir+"/s3")
	defer srv.Close(context.Background())
	store := objectstore.New(embeddedClient(t, srv), app.EmbeddedBucket, objectstore.Options{})
	if err := store.Put(context.Background(), key, strings.NewReader("stray"), 5, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
}

// startEmbeddedS3 runs an embedded S3 server over dir; close it when done.
func startEmbeddedS3(t *testing.T, dir string) *embeds3.Server {
	t.Helper()
	srv, err := embeds3.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// embeddedClient is an S3 client of srv, with its credentials.
func embeddedClient(t *testing.T, srv *embeds3.Server) *s3.Client {
	t.Helper()
	client, err := objectstore.NewClient(context.Background(), objectstore.Config{
		Region: "us-east-1", Endpoint: srv.URL, ForcePathStyle: true,
		Credentials: objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}
