package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/requestlog"
)

// s3Target is the S3 server every side uses, and a client for seeding it.
type s3Target struct {
	label    string
	endpoint string
	creds    aws.CredentialsProvider
	client   *s3.Client
	buckets  map[string]string // side (or erase way) name -> bucket
}

// startS3 connects to -s3-endpoint, or starts the embedded S3 server, and
// creates a bucket of this run's for each of names.
func startS3(ctx context.Context, o options, dir string, names []string, cleanups *[]func()) (*s3Target, error) {
	t := &s3Target{label: o.s3Endpoint, endpoint: o.s3Endpoint,
		creds: objectstore.StaticCredentials(o.s3AccessKey, o.s3SecretKey)}
	if o.s3Endpoint == "" {
		srv, err := embeds3.Start(filepath.Join(dir, "s3"))
		if err != nil {
			return nil, err
		}
		*cleanups = append(*cleanups, func() { _ = srv.Close(context.Background()) })
		t.label, t.endpoint = "embedded (internal/embeds3) at "+srv.URL, srv.URL
		t.creds = objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey)
	}
	var err error
	if t.client, err = newS3Client(ctx, t); err != nil {
		return nil, err
	}
	run := ids.New("")[:12]
	t.buckets = map[string]string{}
	for _, name := range names {
		t.buckets[name] = "bench-" + strings.ReplaceAll(name, "-", "") + "-" + run
	}
	for _, b := range t.buckets {
		if err := createBucket(ctx, t.client, b); err != nil {
			return nil, err
		}
		if o.s3Endpoint != "" {
			*cleanups = append(*cleanups, func() { _ = removeBucket(context.Background(), t.client, b) })
		}
	}
	return t, nil
}

// newS3Client is a client with internal/objectstore's settings.
func newS3Client(ctx context.Context, t *s3Target) (*s3.Client, error) {
	return objectstore.NewClient(ctx, objectstore.Config{
		Region: config.Defaults().S3Region, Endpoint: t.endpoint, ForcePathStyle: true, Credentials: t.creds,
	})
}

// startService runs the service as server.go's serve does, on a loopback
// port, with bucket as its S3_BUCKET and, when tokens is not nil, its
// issuer as AUTH_ISSUER.
func startService(ctx context.Context, o options, dir, bucket string, t *s3Target, tokens *issuer, cleanups *[]func()) (*side, *app.App, error) {
	return startServiceAs(ctx, o, serviceSide, dir, bucket, t, tokens, nil, cleanups)
}

// startServiceAs is startService for the side name, tracing to provider
// when it is not nil, as server.go's startTracing makes the service do.
func startServiceAs(ctx context.Context, o options, name, dir, bucket string, t *s3Target, tokens *issuer,
	provider trace.TracerProvider, cleanups *[]func(),
) (*side, *app.App, error) {
	cfg := config.Defaults()
	cfg.TracerProvider = provider
	cfg.DataDir = dir
	if o.sqliteSync != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, err
		}
		cfg.DatabaseURL = database.SQLiteURL(cfg.SQLitePath() + "?_sync=" + o.sqliteSync)
	}
	cfg.S3Bucket, cfg.S3Endpoint, cfg.S3ForcePathStyle, cfg.S3Credentials = bucket, t.endpoint, true, t.creds
	cfg.RateLimit = o.rateLimit
	cfg.LogLevel = o.logLevel
	if tokens != nil {
		cfg.AuthIssuer, cfg.AuthAudience = tokens.iss.URL, benchAudience
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, nil, err
	}
	// server.go's newLogger, writing to io.Discard.
	logger := slog.New(requestlog.NewLogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level})))
	a, err := app.New(ctx, &cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	*cleanups = append(*cleanups, func() { _ = a.Close(context.Background()) })
	purgeCtx, stopPurger := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Purger.Run(purgeCtx, a.Queue.Wakeups(purge.QueueKind)) })
	*cleanups = append(*cleanups, func() { stopPurger(); wg.Wait() })
	// Through httpserver.Listener, as server.go serves it: its framing
	// check reads every byte of every request.
	// A connection of our own, with the service's DSN, to seed and inspect.
	db, err := sql.Open("sqlite3", sqliteDSN(cfg.SQLitePath(), o.sqliteSync))
	if err != nil {
		return nil, nil, err
	}
	*cleanups = append(*cleanups, func() { _ = db.Close() })
	s, err := serve(name, a.Handler, httpserver.Listener, db, o, cleanups)
	if err != nil {
		return nil, nil, err
	}
	s.settle = a.Purger.Flush
	return s, a, nil
}

// startHandwritten runs the baseline name (minimalSide or sameWorkSide) on
// its own migrated SQLite file.
func startHandwritten(ctx context.Context, o options, name, dir string, t *s3Target, cleanups *[]func()) (*side, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	dsn := sqliteDSN(filepath.Join(dir, "uploads.db"), o.sqliteSync)
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	*cleanups = append(*cleanups, func() { _ = db.Close() })
	if _, err := database.Migrate(ctx, db, dialect.SQLite); err != nil {
		return nil, err
	}
	writer := db
	if !o.busyWait {
		if writer, err = sql.Open("sqlite3", dsn); err != nil {
			return nil, err
		}
		writer.SetMaxOpenConns(1)
		*cleanups = append(*cleanups, func() { _ = writer.Close() })
	}
	s3c, err := newS3Client(ctx, t)
	if err != nil {
		return nil, err
	}
	h := &handwritten{db: db, writer: writer, s3: s3c, lockFirst: o.lockFirst, sameWork: name == sameWorkSide}
	if o.prepared {
		if err := h.prepare(ctx); err != nil {
			return nil, err
		}
	}
	if !h.sameWork {
		h.notes = newNoteSweeper(writer)
		// Appended before serve's, so run after the server has stopped.
		*cleanups = append(*cleanups, h.notes.close)
	}
	s, err := serve(name, h, nil, db, o, cleanups)
	if err != nil {
		return nil, err
	}
	if h.notes != nil {
		s.settle = h.notes.wait
	}
	return s, nil
}

// currentScenario labels profile samples.
var currentScenario atomic.Value

// serve serves h, whose database db is, on a loopback port with the
// service's http.Server settings, through wrap's listener if wrap is not
// nil.
func serve(name string, h http.Handler, wrap func(net.Listener) net.Listener, db *sql.DB, o options, cleanups *[]func()) (*side, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	if o.cpuprofile != "" {
		h = labelled(name, h)
	}
	srv := httpserver.NewServer(addr, h)
	go func() { _ = srv.Serve(ln) }()
	*cleanups = append(*cleanups, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &side{name: name, baseURL: "http://" + addr, db: db, client: newClient(slices.Max(o.callers)),
		pools: map[string][]seededUpload{}, used: map[string]int{}}, nil
}

// labelled marks the samples of every request h serves with its side, the
// scenario being measured, the credential sent (key or bearer: the two
// halves of a bearer scenario are both the service's) and whether an
// Idempotency-Key was (key or none: the same for rest-delete-key).
func labelled(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scenario, _ := currentScenario.Load().(string)
		credential := "key"
		if r.Header.Get("Authorization") != "" {
			credential = "bearer"
		}
		keyed := "none"
		if r.Header.Get(idempotency.Header) != "" {
			keyed = "key"
		}
		labels := pprof.Labels("side", name, "scenario", scenario, "run", name+"/"+scenario, "credential", credential, "idempotency", keyed)
		pprof.Do(r.Context(), labels, func(ctx context.Context) {
			h.ServeHTTP(w, r.WithContext(ctx))
		})
	})
}
