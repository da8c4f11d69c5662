// Command uploads serves the upload deletion service: GraphQL at /graphql
// (playground at /), the REST contract at /delete-upload-api, and the
// management commands (users, keys, reconcile).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/demo"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/reconcile"
	"github.com/safedelete/uploads/internal/requestlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// run parses the command line and environment, then serves or runs a
// management command.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	privateFiles()
	command, args := splitCommand(args)
	fs := flag.NewFlagSet("uploads", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Config
	settings := config.Register(fs, &cfg)
	var opts admin.Options
	if command != "" {
		admin.RegisterFlags(fs, &opts)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (commands: %s)", fs.Args(), strings.Join(admin.Commands, ", "))
	}
	if err := config.ApplyEnv(fs, settings, lookupEnv); err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	switch command {
	case "":
	case "reconcile":
		return runReconcile(ctx, &cfg, logger, opts, stdout)
	case "users delete":
		return runWithApp(ctx, &cfg, logger, func(a *app.App) error {
			return admin.RunErase(ctx, a.Client, a.Resolver, opts, stdout)
		})
	default:
		return runCommand(ctx, &cfg, command, opts, stdout)
	}
	return serve(ctx, &cfg, logger, stdout)
}

// splitCommand separates a management command ("users create") from flags.
func splitCommand(args []string) (string, []string) {
	for _, c := range admin.Commands {
		words := strings.Fields(c)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c {
			return c, args[len(words):]
		}
	}
	return "", args
}

// runCommand opens only the database: management commands never touch the
// bucket, and SQLite's locking lets them run beside a serving instance.
func runCommand(ctx context.Context, cfg *config.Config, command string, opts admin.Options, stdout io.Writer) error {
	client, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	return admin.Run(ctx, client, command, opts, stdout)
}

// runReconcile compares the bucket with the database and, with --repair,
// queues orphaned objects for the purger of a running service.
func runReconcile(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts admin.Options, stdout io.Writer) error {
	return runWithApp(ctx, cfg, logger, func(a *app.App) error {
		report, err := reconcile.Run(ctx, a.Client, a.Store, reconcile.Options{Repair: opts.Repair, Grace: opts.Grace, UploadTimeout: cfg.UploadTimeout})
		if err != nil {
			return err
		}
		if opts.JSON {
			return json.NewEncoder(stdout).Encode(report)
		}
		return report.WriteText(stdout)
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

// serve runs the HTTP server, the background purger and the janitor until ctx ends, then
// stops accepting, lets requests in flight finish and exits. Pending purges
// stay in the database for the next start.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	baseURL := "http://" + displayAddr(ln.Addr())
	if cfg.EmbeddedDatabase() {
		if err := demo.SeedIfEmpty(ctx, a.Client, a.Resolver, baseURL, stdout); err != nil {
			ln.Close()
			return err
		}
	}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Purger.Run(workCtx) })
	wg.Go(func() { a.Janitor.Run(workCtx) })
	defer func() { stopWork(); wg.Wait() }()

	srv := httpserver.NewServer(cfg.Addr, a.Handler)
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

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	return slog.New(requestlog.NewLogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))), nil
}
