// Package app assembles the service from its settings: the database, the
// object store, the resolvers, the purger and the HTTP routes. server.go
// runs it; tests build it exactly the same way.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/aws/smithy-go/middleware"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/auth"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/httpserver"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/janitor"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/objectlock"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/oidc"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/queue"
	"github.com/safedelete/uploads/internal/ratelimit"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/signin"
	"github.com/safedelete/uploads/internal/tracing"
	"github.com/safedelete/uploads/internal/webhook"
)

// EmbeddedBucket is the bucket the embedded S3 server holds uploads in.
const EmbeddedBucket = "uploads"

// App is the assembled service.
type App struct {
	Metrics  *metrics.Metrics
	Client   *ent.Client
	Keys     *apikey.Authenticator
	Store    *objectstore.Store
	Resolver *graph.Resolver
	Purger   *purge.Purger
	Janitor  *janitor.Janitor
	Queue    *queue.Queue
	// Jobs runs deletion jobs (their runner: Jobs.Run).
	Jobs *jobs.Jobs
	// Events feeds the GraphQL subscriptions.
	Events *events.Feed
	// Idempotency keeps the answers of requests sent with an Idempotency-Key.
	Idempotency *idempotency.Store
	// Receipts signs deletion receipts.
	Receipts *receipt.Issuer
	// LegalHolds mirrors holds to the bucket's S3 Object Lock (its
	// worker: LegalHolds.Run).
	LegalHolds *objectlock.Mirror
	Handler    http.Handler

	// background is Client, or on PostgreSQL the same database through
	// connections of its own (database.Background): the webhook sender's.
	background     *ent.Client
	embedded       *embeds3.Server
	ready          map[string]func(context.Context) error
	stopTokens     context.CancelFunc
	sealer         func() (*webhook.Sealer, error)
	webhookOptions webhook.Options
	logger         *slog.Logger
}

// WebhookSender returns the sender of webhook deliveries, reading (or
// making) the key that opens the endpoints' secrets.
func (a *App) WebhookSender() (*webhook.Sender, error) {
	sealer, err := a.sealer()
	if err != nil {
		return nil, err
	}
	return webhook.NewSender(a.background, sealer, a.logger, a.webhookOptions), nil
}

// checkWebhookKey is the readiness check of webhooks: the key is readable
// and opens the stored secrets, or no delivery could be sent.
func (a *App) checkWebhookKey(ctx context.Context) error {
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	return webhook.CheckKey(ctx, a.Client, sealer)
}

// New opens the database and the object store and builds the service.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	a := &App{logger: logger}
	// The queue's figures come from the purger, made below.
	a.Metrics = metrics.New(func(ctx context.Context) (int, time.Duration, error) { return a.Purger.QueueStats(ctx) })
	if err := a.openStore(ctx, cfg); err != nil {
		a.Close(ctx)
		return nil, err
	}
	client, err := OpenDatabase(ctx, cfg)
	if err != nil {
		a.Close(ctx)
		return nil, err
	}
	a.Client = client
	// The webhook sender's connections are its own (on PostgreSQL), so
	// that requests waiting for one do not hold deliveries back.
	a.background = database.Background(client)
	clients := []*ent.Client{client}
	if a.background != client {
		clients = append(clients, a.background)
	}
	tracer := tracing.New(cfg.TracerProvider)
	if tracer != nil {
		// Queued work joins the trace of the request that queued it.
		for _, c := range clients {
			c.ObjectPurge.Use(tracing.StampQueued())
			c.WebhookDelivery.Use(tracing.StampQueued())
			c.DeletionJob.Use(tracing.StampQueued())
		}
	}
	sessionURL, err := sessionURL(ctx, cfg, client)
	if err != nil {
		a.Close(ctx)
		return nil, err
	}
	a.Queue = queue.New(client, sessionURL, logger)
	a.Queue.OnLeadership = a.Metrics.Leader
	// Whatever makes a purge or a delivery due now wakes their workers.
	for _, c := range clients {
		c.ObjectPurge.Use(a.Queue.WakeOnDue(purge.QueueKind))
		c.WebhookDelivery.Use(a.Queue.WakeOnDue(webhook.QueueKind))
		c.DeletionJob.Use(a.Queue.WakeOnDue(jobs.QueueKind))
		c.LegalHoldSync.Use(a.Queue.WakeOnDue(objectlock.QueueKind))
	}
	a.Keys = apikey.NewAuthenticator(client)
	a.Events = events.New(client, a.Queue.Wakeups(events.QueueKind), logger, events.Options{PerCredential: cfg.SubscriptionsPerCredential})
	warnIfDataDirShared(logger, cfg)
	// On SQLite, concurrent deletes, and the ends of their purges, share
	// commits (and their fsyncs).
	commits := database.NewGroup(client)
	// The purger is the retry loop, with its own backoff: its store tries
	// S3 once per call.
	// Every purge that finishes issues receipts, so the keys are read (or
	// made) now, by serving and by every command that deletes.
	keys, err := receipt.LoadOrCreateKeys(cfg.ReceiptKeyPath())
	if err != nil {
		a.Close(ctx)
		return nil, fmt.Errorf("receipt keys (RECEIPT_KEY_FILE): %w", err)
	}
	warnIfKeyShared(logger, "receipt key", "it signs deletion receipts, which anyone could then forge", cfg.ReceiptKeyPath())
	a.Receipts = receipt.NewIssuer(keys, cfg.S3DeleteMarkerOnly)
	a.LegalHolds = objectlock.New(client, a.Store.Once(), logger, objectlock.Options{
		MaxBackoff: cfg.PurgeMaxBackoff,
		Metrics:    a.Metrics,
	})
	a.Purger = purge.New(client, a.Store.Once(), logger, purge.Options{
		PollInterval:  cfg.PurgePollInterval,
		MaxBackoff:    cfg.PurgeMaxBackoff,
		InlineTimeout: cfg.PurgeInlineTimeout,
		UploadTimeout: cfg.UploadTimeout,
		Metrics:       a.Metrics,
		Commits:       commits,
		Receipts:      a.Receipts,
		Tracer:        tracer,
		Refused:       a.LegalHolds.Refused,
	})
	// The key is read (or made) on first use: serving and registering
	// endpoints need it, commands that only delete do not.
	a.sealer = sync.OnceValues(func() (*webhook.Sealer, error) {
		key, err := webhook.LoadOrCreateKey(cfg.WebhookKeyPath())
		if err != nil {
			return nil, fmt.Errorf("webhook key (WEBHOOK_KEY_FILE): %w", err)
		}
		warnIfKeyShared(logger, "webhook key", "it opens every endpoint's signing secret", cfg.WebhookKeyPath())
		return webhook.NewSealer(key)
	})
	a.Resolver = graph.NewResolver(client, a.Store, a.Purger, logger, graph.Options{
		MaxUploadSize:    cfg.MaxUploadSize,
		UploadTimeout:    cfg.UploadTimeout,
		DeleteRetention:  cfg.DeleteRetention,
		WebhookSealer:    a.sealer,
		WebhookAllowHTTP: cfg.WebhookAllowHTTP,
		Metrics:          a.Metrics,
		Commits:          commits,
		Jobs:             jobs.Options{Metrics: a.Metrics, Tracer: tracer},
		Events:           a.Events,
		Receipts:         a.Receipts,
		LegalHolds:       a.LegalHolds,
		Tracer:           tracer,
	})
	a.Jobs = a.Resolver.Jobs()
	a.webhookOptions = webhook.Options{
		Timeout:              cfg.WebhookTimeout,
		MaxBackoff:           cfg.WebhookMaxBackoff,
		AllowPrivateNetworks: cfg.WebhookAllowPrivateNetworks,
		AllowHTTP:            cfg.WebhookAllowHTTP,
		Metrics:              a.Metrics,
		Tracer:               tracer,
	}
	a.Idempotency = idempotency.New(client, func() (idempotency.Sealer, error) { return a.sealer() }, idempotency.Options{
		Retention: cfg.IdempotencyRetention,
		Metrics:   a.Metrics,
		Commits:   commits,
	})
	a.Janitor = janitor.New(client, a.Purger, a.Resolver, logger, janitor.Options{
		Interval:        cfg.JanitorInterval,
		UploadTimeout:   cfg.UploadTimeout,
		FailedRetention: cfg.FailedUploadRetention,
		AuditRetention:  cfg.AuditRetention,
		JobRetention:    cfg.JobRetention,
		Idempotency:     a.Idempotency,
		Metrics:         a.Metrics,
	})
	var tokens *auth.Tokens
	if cfg.AuthIssuer != "" {
		tokens = a.acceptTokens(ctx, cfg)
	}
	limiter, err := newLimiter(cfg, logger)
	if err != nil {
		a.Close(ctx)
		return nil, err
	}
	a.ready = map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { _, err := client.User.Query().Exist(ctx); return err },
		"bucket":   a.Store.Ping,
		"webhooks": a.checkWebhookKey,
	}
	if tokens != nil {
		a.ready["access_tokens"] = tokens.Verifier.Check
	}
	a.Handler = httpserver.NewHandler(httpserver.Config{
		Keys:            a.Keys,
		Resolver:        a.Resolver,
		Tokens:          tokens,
		Logger:          logger,
		Introspection:   cfg.GraphQLIntrospection,
		ComplexityLimit: cfg.GraphQLComplexityLimit,
		DepthLimit:      cfg.GraphQLDepthLimit,
		AllowedOrigins:  cfg.AllowedOrigins(),
		Limiter:         limiter,
		Metrics:         a.Metrics,
		BodyTimeout:     cfg.RequestBodyTimeout,
		UploadIdle:      cfg.UploadBodyIdleTimeout,
		GraphQLTimeout:  cfg.GraphQLTimeout,
		Ready:           a.ready,
		Idempotency:     a.Idempotency,
		ReceiptKeys:     keys,
		Tracer:          cfg.TracerProvider,
	})
	return a, nil
}

// acceptTokens builds the checks of the issuer's access tokens, fetching
// its keys now; they are refreshed in the background until Close.
func (a *App) acceptTokens(ctx context.Context, cfg *config.Config) *auth.Tokens {
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopTokens = stop
	defaults, _ := scope.Parse(cfg.AuthDefaultScopes) // checked with the settings
	return &auth.Tokens{
		Verifier: oidc.New(life, oidc.Options{
			Issuer:        cfg.AuthIssuer,
			Audience:      cfg.AuthAudience,
			ClockSkew:     cfg.AuthClockSkew,
			DefaultScopes: defaults,
			Logger:        a.logger,
		}),
		Identities: signin.NewResolver(a.Client, cfg.AuthCreateUsers),
	}
}

// OpenDatabase opens the configured database (creating the embedded SQLite
// file's directory if needed) and brings its schema up to date.
func OpenDatabase(ctx context.Context, cfg *config.Config) (*ent.Client, error) {
	databaseURL := cfg.DatabaseURL
	if cfg.EmbeddedDatabase() {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		databaseURL = database.SQLiteURL(cfg.SQLitePath())
	}
	return database.Open(ctx, databaseURL, database.Options{Tracer: cfg.TracerProvider})
}

// warnIfDataDirShared warns when other users may read the data directory.
// The files the service makes in it are private, but the directory is the
// operator's: it is not changed, only reported.
func warnIfDataDirShared(logger *slog.Logger, cfg *config.Config) {
	if !cfg.EmbeddedDatabase() && !cfg.EmbeddedS3() {
		return
	}
	info, err := os.Stat(cfg.DataDir)
	if err != nil {
		return
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the data directory is accessible to other users; it holds the database and uploads: chmod 700 it",
			"dir", cfg.DataDir, "mode", fmt.Sprintf("%#o", perm))
	}
}

// warnIfKeyShared warns when other users may read or change a key file:
// the webhook key opens every endpoint's signing secret, with which anyone
// can forge deliveries; the receipt keys sign deletion receipts. A key the
// service made is private; one an operator provided is theirs, so it is
// reported, not changed.
func warnIfKeyShared(logger *slog.Logger, name, why, path string) {
	info, err := os.Stat(path)
	if err != nil {
		return
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the "+name+" file is accessible to other users; "+why+": chmod 600 it",
			"file", path, "mode", fmt.Sprintf("%#o", perm))
	}
}

// newLimiter builds the rate limiter, sharing counts through Redis when
// REDIS_URL is set.
func newLimiter(cfg *config.Config, logger *slog.Logger) (*ratelimit.Limiter, error) {
	rl := ratelimit.Config{Requests: cfg.RateLimit, Window: cfg.RateLimitWindow, Logger: logger}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		rl.Redis = redis.NewClient(opts)
	}
	return ratelimit.New(rl), nil
}

// openStore connects to the configured bucket, or starts the embedded S3
// server and connects to it through the very same client code.
func (a *App) openStore(ctx context.Context, cfg *config.Config) error {
	s3cfg := objectstore.Config{
		Bucket:         cfg.S3Bucket,
		Region:         cfg.S3Region,
		Endpoint:       cfg.S3Endpoint,
		ForcePathStyle: cfg.S3ForcePathStyle,
		Credentials:    cfg.S3Credentials,
		APIOptions:     []func(*middleware.Stack) error{a.Metrics.S3APIOption},
	}
	if cfg.TracerProvider != nil { // a span per S3 call: S3.DeleteObject, ...
		otelaws.AppendMiddlewares(&s3cfg.APIOptions, otelaws.WithTracerProvider(cfg.TracerProvider))
	}
	if cfg.EmbeddedS3() {
		srv, err := embeds3.Start(cfg.EmbeddedS3Dir())
		if err != nil {
			return err
		}
		a.embedded = srv
		s3cfg.Bucket = EmbeddedBucket
		s3cfg.Endpoint = srv.URL
		s3cfg.ForcePathStyle = true
		s3cfg.Credentials = objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey)
	}
	client, err := objectstore.NewClient(ctx, s3cfg)
	if err != nil {
		return err
	}
	a.Store = objectstore.New(client, s3cfg.Bucket, objectstore.Options{
		PartSize:          cfg.S3PartSize,
		MarkerOnlyDeletes: cfg.S3DeleteMarkerOnly,
	})
	if cfg.EmbeddedS3() {
		// Only our own bucket is ours to create; a configured one must exist.
		if err := a.Store.EnsureBucket(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the database and stops the embedded S3 server.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.stopTokens != nil {
		a.stopTokens()
	}
	if a.Purger != nil {
		a.Purger.Flush() // before the database closes under it
	}
	if a.Keys != nil {
		a.Keys.Flush() // the last uses of keys, before the database closes
	}
	if a.Events != nil {
		a.Events.Close()
	}
	if a.Queue != nil {
		a.Queue.Close()
	}
	if a.Client != nil {
		errs = append(errs, a.Client.Close())
	}
	if a.embedded != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		errs = append(errs, a.embedded.Close(ctx))
	}
	return errors.Join(errs...)
}

// sessionURL is the database URL of what needs one server connection for
// as long as it runs (the queue's LISTEN and its leader's lock):
// DATABASE_SESSION_URL, which a DATABASE_URL through a transaction pooler
// needs, or else DATABASE_URL.
func sessionURL(ctx context.Context, cfg *config.Config, client *ent.Client) (string, error) {
	if cfg.DatabaseSessionURL == "" {
		if database.TransactionPooled(client) {
			return "", errors.New("DATABASE_URL reaches PostgreSQL through a pooler in transaction mode (such as PgBouncer's pool_mode=transaction), " +
				"where LISTEN/NOTIFY wake-ups and the periodic work's session lock do not hold: set DATABASE_SESSION_URL to a direct connection to PostgreSQL, " +
				"or to a pooler in session mode (docs/operations.md, Connection poolers)")
		}
		return cfg.DatabaseURL, nil
	}
	if database.Dialect(client) != dialect.Postgres {
		return "", errors.New("DATABASE_SESSION_URL is for a PostgreSQL DATABASE_URL; SQLite has no sessions to keep")
	}
	if err := database.SessionURL(ctx, cfg.DatabaseSessionURL); err != nil {
		return "", err
	}
	return cfg.DatabaseSessionURL, nil
}
