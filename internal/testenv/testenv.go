// Package testenv builds a complete service for a test: its own SQLite
// database, its own bucket on a real S3-speaking server behind a fault
// proxy, and the real HTTP handler on a loopback port.
//
// By default the S3 server is the embedded one (package embeds3) started for the
// test. With TEST_S3_ENDPOINT set (plus TEST_S3_ACCESS_KEY and
// TEST_S3_SECRET_KEY), every test gets a fresh bucket on that server
// instead; .ci/run uses this to run the suite against versitygw and MinIO.
//
// The database is a SQLite file of the test's own, or, with
// TEST_DATABASE_URL=postgres://..., a PostgreSQL schema of the test's own.
// Nothing is shared between two Envs, so a test that builds its own may
// call t.Parallel.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/objectlock"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/webhook"
)

// Env is one test's running service. Its helpers report failures to the
// test it was made for; For gives them another (a fuzz function's *testing.T).
type Env struct {
	t testing.TB
	*world
}

// world is the service itself, shared by every Env that For returns.
type world struct {
	Config *config.Config
	App    *app.App
	URL    string // the service
	Bucket string
	// S3 sits between the service and the S3 server; SetMode makes it fail.
	S3 *faultproxy.Proxy
	// Direct reaches the bucket without the proxy, to see what is really there.
	Direct *objectstore.Store
	// Logs holds everything the service logged.
	Logs *SyncBuffer

	handler   atomic.Value // http.Handler, swapped by Restart
	stopPurge func()

	mu      sync.Mutex
	secrets []string // every API key issued, to check the logs for
}

// Options change the environment.
type Options struct {
	// NoPurgeLoop leaves pending purges alone: no background purger runs.
	NoPurgeLoop bool
	// NoJobRunner runs no deletion jobs in the background: the test runs
	// them itself (App.Jobs.RunOnce).
	NoJobRunner bool
	// Configure adjusts the service's settings before it starts.
	Configure func(*config.Config)
}

// New starts a service for t and stops it when t ends.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	endpoint, creds := s3Server(t)
	return newOn(t, opts, endpoint, creds)
}

// newOn starts a service for t whose bucket is on the S3 server at endpoint.
func newOn(t testing.TB, opts Options, endpoint string, creds aws.CredentialsProvider) *Env {
	t.Helper()
	return newOnBucket(t, opts, endpoint, creds, (*objectstore.Store).EnsureBucket)
}

// newOnBucket is newOn with the bucket made by create.
func newOnBucket(t testing.TB, opts Options, endpoint string, creds aws.CredentialsProvider,
	create func(*objectstore.Store, context.Context) error,
) *Env {
	t.Helper()
	ctx := context.Background()
	bucket := "test-" + randomHex(8)
	direct := newStore(t, endpoint, creds, bucket)
	if err := create(direct, ctx); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	proxy, err := faultproxy.Start(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	defaults := config.Defaults()
	cfg := &config.Config{
		DataDir:                t.TempDir(),
		DatabaseURL:            PostgresSchema(t), // "" is a SQLite file in DataDir
		S3Bucket:               bucket,
		S3Endpoint:             proxy.URL,
		S3Region:               "us-east-1",
		S3ForcePathStyle:       true,
		S3Credentials:          creds,
		MaxUploadSize:          1 << 20,
		UploadTimeout:          time.Minute,
		RequestBodyTimeout:     defaults.RequestBodyTimeout,
		UploadBodyIdleTimeout:  defaults.UploadBodyIdleTimeout,
		GraphQLIntrospection:   true,
		GraphQLComplexityLimit: 1000,
		GraphQLDepthLimit:      10,
		PurgeInlineTimeout:     2 * time.Second,
		PurgePollInterval:      50 * time.Millisecond,
		PurgeMaxBackoff:        200 * time.Millisecond,
		AuthClockSkew:          defaults.AuthClockSkew,
		AuthDefaultScopes:      defaults.AuthDefaultScopes,
	}
	if opts.Configure != nil {
		opts.Configure(cfg)
	}
	e := &Env{t: t, world: &world{Config: cfg, Bucket: bucket, S3: proxy, Direct: direct, Logs: &SyncBuffer{}}}
	e.serve(opts)
	return e
}

// NewInstance starts another instance of e's service, as a second process
// with the same settings would run: on the same database, bucket and
// DATA_DIR (so the same webhook key, which seals stored answers), with an
// App, a purger and an HTTP server of its own; stopped when the test ends.
// Its logs go to e's. Instances share what they know only through the
// database, so two of them run as production's do on PostgreSQL
// (TEST_DATABASE_URL).
func (e *Env) NewInstance() *Env {
	e.t.Helper()
	other := &Env{t: e.t, world: &world{Config: e.Config, Bucket: e.Bucket, S3: e.S3, Direct: e.Direct, Logs: e.Logs}}
	other.serve(Options{})
	return other
}

// serve starts e's service and its HTTP server, both stopped when the test
// ends.
func (e *Env) serve(opts Options) {
	e.t.Helper()
	// The production server's settings (timeouts, header limit), around a
	// handler that Restart can swap.
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpserver.NewServer("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	srv.Listener = httpserver.Listener(srv.Listener)
	srv.Start()
	e.t.Cleanup(srv.Close)
	e.URL = srv.URL
	e.start(opts)
	e.t.Cleanup(e.stop)
	e.t.Cleanup(e.checkLogsForSecrets)
}

// checkLogsForSecrets fails the test if any API key issued in it appears in
// what the service logged, so every test doubles as a check that secrets
// never reach the logs.
func (e *Env) checkLogsForSecrets() {
	logs := e.Logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, secret := range e.secrets {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[len(secret)-40:]) {
			e.t.Errorf("an API key (%s…) appears in the service's logs", secret[:9])
		}
	}
}

func (e *Env) start(opts Options) {
	e.t.Helper()
	logger := slog.New(requestlog.NewLogHandler(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	a, err := app.New(context.Background(), e.Config, logger)
	if err != nil {
		e.t.Fatalf("start service: %v", err)
	}
	e.App = a
	e.handler.Store(a.Handler)
	// The legal-hold mirror asks S3 whether the bucket has Object Lock when
	// it starts, once; asked here first, that request is over before the
	// test runs, not counted among the requests a test watches for.
	_, _ = a.LegalHolds.Lockable(context.Background(), e.Bucket)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Queue.Listen(ctx) })
	if !opts.NoPurgeLoop {
		wg.Go(func() { a.Purger.Run(ctx, a.Queue.Wakeups(purge.QueueKind)) })
	}
	sender, err := a.WebhookSender()
	if err != nil {
		e.t.Fatalf("start the webhook sender: %v", err)
	}
	wg.Go(func() { sender.Run(ctx, a.Queue.Wakeups(webhook.QueueKind)) })
	wg.Go(func() { a.LegalHolds.Run(ctx, a.Queue.Wakeups(objectlock.QueueKind)) })
	if !opts.NoJobRunner {
		wg.Go(func() { a.Jobs.Run(ctx, a.Queue.Wakeups(jobs.QueueKind)) })
	}
	e.stopPurge = func() { cancel(); wg.Wait() }
}

func (e *Env) stop() {
	e.stopPurge()
	_ = e.App.Close(context.Background())
}

// Restart stops the service as a process exit would (pending purges stay in
// the database) and starts a new one on the same database and bucket.
func (e *Env) Restart(opts Options) {
	e.t.Helper()
	e.stop()
	e.start(opts)
}

// For returns the same service, its helpers reporting to t.
func (e *Env) For(t testing.TB) *Env { return &Env{t: t, world: e.world} }

// Client is the service's database.
func (e *Env) Client() *ent.Client { return e.App.Client }

// NewUser creates a user and returns its id and API key.
func (e *Env) NewUser() (userID, apiKey string) {
	e.t.Helper()
	u, _, secret, err := admin.CreateUser(context.Background(), e.Client(), randomHex(6)+"@example.com")
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	e.mu.Lock()
	e.secrets = append(e.secrets, secret)
	e.mu.Unlock()
	return u.ID, secret
}

// ObjectExists reports whether key is in the bucket, asking S3 directly.
func (e *Env) ObjectExists(key string) bool {
	e.t.Helper()
	ok, err := e.Direct.Exists(context.Background(), e.Bucket, key)
	if err != nil {
		e.t.Fatalf("head object: %v", err)
	}
	return ok
}

// AssertIntact fails the test unless each upload still has its record and
// its object.
func (e *Env) AssertIntact(uploads ...*ent.Upload) {
	e.t.Helper()
	for _, u := range uploads {
		if _, err := e.Client().Upload.Get(context.Background(), u.ID); err != nil {
			e.t.Fatalf("upload %s: record gone (%v)", u.ID, err)
		}
		if u.ObjectKey != "" && !e.ObjectExists(u.ObjectKey) {
			e.t.Fatalf("upload %s: object gone", u.ID)
		}
	}
}

// ObjectKeys lists every object in the bucket, asking S3 directly.
func (e *Env) ObjectKeys() []string {
	e.t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(e.Direct.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(e.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatalf("list objects: %v", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// IncompleteMultipartUploads counts the bucket's multipart uploads that
// were neither completed nor aborted, asking S3 directly.
func (e *Env) IncompleteMultipartUploads() int {
	e.t.Helper()
	out, err := e.Direct.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.Bucket)})
	if err != nil {
		e.t.Fatalf("list multipart uploads: %v", err)
	}
	return len(out.Uploads)
}

// PendingPurges counts purges not yet done, due or not (the metrics'
// QueueStats counts only the overdue).
func (e *Env) PendingPurges() int {
	e.t.Helper()
	e.App.Purger.Flush() // purges finished a moment ago
	n, err := e.Client().ObjectPurge.Query().Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Eventually polls cond until it holds or timeout passes.
func (e *Env) Eventually(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OpenDatabase opens, migrated, a database of t's own: a fresh schema on
// TEST_DATABASE_URL's server if it is set, else a SQLite file in a
// temporary directory; closed when the test ends.
func OpenDatabase(t testing.TB) *ent.Client {
	t.Helper()
	url := PostgresSchema(t)
	if url == "" {
		url = database.SQLiteURL(filepath.Join(t.TempDir(), "test.db"))
	}
	client, err := database.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// PostgresSchema returns the URL of a fresh schema on the PostgreSQL server
// of TEST_DATABASE_URL, dropped when the test ends, or "" when none is set.
func PostgresSchema(t testing.TB) string {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		return ""
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := "test_" + randomHex(8)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	return withParam(base, "search_path", schema)
}

// ReadOnlyDatabaseURL is the service's database, opened read-only.
func (e *Env) ReadOnlyDatabaseURL() string {
	if e.Config.DatabaseURL == "" {
		return "sqlite://" + e.Config.SQLitePath() + "?mode=ro"
	}
	return withParam(e.Config.DatabaseURL, "default_transaction_read_only", "on")
}

func withParam(rawURL, key, value string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// s3Server returns the endpoint and credentials of the S3 server for the
// test, starting the embedded one unless TEST_S3_ENDPOINT names another.
func s3Server(t testing.TB) (string, aws.CredentialsProvider) {
	if endpoint := os.Getenv("TEST_S3_ENDPOINT"); endpoint != "" {
		return endpoint, objectstore.StaticCredentials(os.Getenv("TEST_S3_ACCESS_KEY"), os.Getenv("TEST_S3_SECRET_KEY"))
	}
	srv, err := embeds3.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv.URL, objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey)
}

func newStore(t testing.TB, endpoint string, creds aws.CredentialsProvider, bucket string) *objectstore.Store {
	client, err := objectstore.NewClient(context.Background(), objectstore.Config{
		Bucket: bucket, Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true, Credentials: creds,
	})
	if err != nil {
		t.Fatal(err)
	}
	return objectstore.New(client, bucket, objectstore.Options{})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*SyncBuffer)(nil)
