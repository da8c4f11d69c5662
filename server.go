// Command uploads serves the upload deletion service: GraphQL at /graphql
// (playground at /), the REST contract at /delete-upload-api, and the
// management commands (users, keys, reconcile, version); cli.go holds the
// command line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/demo"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/objectlock"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/tracing"
	"github.com/safedelete/uploads/internal/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	status := exitStatus(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(status)
}

// run parses the command line and environment, then serves or runs a
// command (see cli.go). main maps its error to the exit status.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	privateFiles()
	c := &commandLine{lookupEnv: lookupEnv, stdout: stdout, stderr: stderr, buildInfo: debug.ReadBuildInfo}
	return c.run(ctx, args)
}

// runCommand opens only the database: management commands never touch the
// bucket, and SQLite's locking lets them run beside a serving instance.
func runCommand(ctx context.Context, cfg *config.Config, command admin.Command, opts admin.Options, stdout io.Writer) error {
	client, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	return command.Run(ctx, client, opts, stdout)
}

// runReconcile compares the bucket with the database and, with --repair,
// queues orphaned objects for the purger of a running service.
// It returns errDrift when it found drift.
func runReconcile(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts reconcileOptions, stdout io.Writer) error {
	return runWithApp(ctx, cfg, logger, func(a *app.App) error {
		report, err := reconcile.Run(ctx, a.Client, a.Store, reconcile.Options{Repair: opts.Repair, Grace: opts.Grace, UploadTimeout: cfg.UploadTimeout})
		if err != nil {
			return err
		}
		if opts.JSON {
			err = json.NewEncoder(stdout).Encode(report)
		} else {
			err = report.WriteText(stdout)
		}
		if err == nil && report.Drift() {
			return errDrift
		}
		return err
	})
}

// runWithApp runs a command that needs the bucket as well as the database
// (it deletes or compares objects), beside a serving instance or not.
func runWithApp(ctx context.Context, cfg *config.Config, logger *slog.Logger, command func(*app.App) error) error {
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))
	return command(a)
}

// serve runs the HTTP server, the background purger, the janitor (when this
// instance leads) and the webhook sender, woken by the queue, until ctx
// ends, then
// stops accepting, lets requests in flight finish and exits. Pending purges
// stay in the database for the next start.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	// Listen first: a port that is taken fails the start before anything
	// (a data directory, a database) is written to disk.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return listenError(cfg.Addr, err)
	}
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))

	baseURL := "http://" + displayAddr(ln.Addr())
	firstStart := demo.Options{Seed: cfg.SeedsDemo()}
	if cfg.EmbeddedDatabase() {
		firstStart.DataDir = cfg.DataDir
	}
	if err := demo.SeedIfEmpty(ctx, a.Client, a.Resolver, baseURL, firstStart, stdout); err != nil {
		ln.Close()
		return err
	}

	sender, err := a.WebhookSender()
	if err != nil {
		ln.Close()
		return err
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Queue.Listen(workCtx) })
	wg.Go(func() { a.Purger.Run(workCtx, a.Queue.Wakeups(purge.QueueKind)) })
	wg.Go(func() { a.Janitor.Run(workCtx, a.Queue.Leads) })
	wg.Go(func() { sender.Run(workCtx, a.Queue.Wakeups(webhook.QueueKind)) })
	wg.Go(func() { a.Jobs.Run(workCtx, a.Queue.Wakeups(jobs.QueueKind)) })
	wg.Go(func() { a.LegalHolds.Run(workCtx, a.Queue.Wakeups(objectlock.QueueKind)) })
	defer func() { stopWork(); wg.Wait() }()

	srv := httpserver.NewServer(cfg.Addr, a.Handler)
	// Subscriptions end at once (their streams say why), so that shutting
	// down does not wait for them until SHUTDOWN_TIMEOUT.
	srv.RegisterOnShutdown(a.Events.Close)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(httpserver.Listener(ln)) }()
	logger.Info("serving", "url", baseURL, "graphql", baseURL+"/graphql", "playground", baseURL+"/")

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startTracing starts sending traces when the standard OTEL_* variables
// ask for them (OTEL_EXPORTER_OTLP_ENDPOINT: internal/tracing), setting
// cfg.TracerProvider. The function it returns sends the spans still
// buffered, within a few seconds. Otherwise nothing is started.
func startTracing(ctx context.Context, cfg *config.Config, lookupEnv func(string) (string, bool),
	buildInfo func() (*debug.BuildInfo, bool), logger *slog.Logger,
) (stop func(), err error) {
	if !tracing.Enabled(lookupEnv) {
		return func() {}, nil
	}
	version := "(devel)"
	if info, ok := buildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	provider, err := tracing.Start(ctx, lookupEnv, version)
	if err != nil {
		return nil, err
	}
	// The exporter's failures (a collector down) are logged, not fatal.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("tracing", "error", err) }))
	cfg.TracerProvider = provider
	logger.Info("tracing: sending traces to the OTLP endpoint")
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := provider.Shutdown(ctx); err != nil {
			logger.Warn("tracing: spans lost at shutdown", "error", err)
		}
	}, nil
}

// displayAddr makes a listen address pasteable: ":8080" listens on every
// interface, and localhost reaches it.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return "localhost:" + port
	}
	return addr.String()
}

// listenError names the setting behind a failed listen.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("ADDR=%s: the address is in use by another process; choose another with --addr or ADDR", addr)
	}
	return fmt.Errorf("ADDR=%s: want HOST:PORT or :PORT that this machine can listen on: %w", addr, err)
}

// newLogger writes JSON lines for machines, or text for a person at a
// terminal (LOG_FORMAT), with each request's id.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL=%s: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("LOG_FORMAT=%s: want json or text", format)
	}
	return slog.New(requestlog.NewLogHandler(h)), nil
}
