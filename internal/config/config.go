// Package config defines every setting of the service. Each is an
// environment variable and a flag of the same name (ADDR and --addr); a flag
// wins over the variable, the variable over the default. A setting's
// default is written here and nowhere else.
package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/oidc"
	scopes "github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/webhook"
)

// Config holds the settings.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	// DatabaseSessionURL, when DatabaseURL goes through a transaction
	// pooler, reaches PostgreSQL directly (or through a session pooler)
	// for LISTEN/NOTIFY and the leader's lock.
	DatabaseSessionURL string

	S3Bucket           string
	S3Endpoint         string
	S3Region           string
	S3ForcePathStyle   bool
	S3PartSize         int64
	S3DeleteMarkerOnly bool
	// S3Credentials overrides the SDK's standard credential chain. It is not
	// a setting: secrets do not belong in flags. Tests and the embedded
	// store set it.
	S3Credentials aws.CredentialsProvider

	MaxUploadSize int64
	UploadTimeout time.Duration

	FailedUploadRetention time.Duration
	DeleteRetention       time.Duration
	AuditRetention        time.Duration
	JobRetention          time.Duration
	IdempotencyRetention  time.Duration
	JanitorInterval       time.Duration

	RequestBodyTimeout    time.Duration
	UploadBodyIdleTimeout time.Duration

	CORSAllowedOrigins string

	AuthIssuer        string
	AuthAudience      string
	AuthCreateUsers   bool
	AuthClockSkew     time.Duration
	AuthDefaultScopes string

	RateLimit       int
	RateLimitWindow time.Duration
	RedisURL        string

	GraphQLIntrospection   bool
	GraphQLComplexityLimit int
	GraphQLDepthLimit      int
	GraphQLTimeout         time.Duration
	// SubscriptionsPerCredential bounds the subscriptions one credential
	// holds open on one instance.
	SubscriptionsPerCredential int

	WebhookAllowHTTP            bool
	WebhookAllowPrivateNetworks bool
	WebhookKeyFile              string
	ReceiptKeyFile              string
	WebhookTimeout              time.Duration
	WebhookMaxBackoff           time.Duration

	PurgeInlineTimeout time.Duration
	PurgePollInterval  time.Duration
	PurgeMaxBackoff    time.Duration

	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	// Demo seeds the demo user and uploads on a first start even where
	// they would land in a bucket or database of the operator's.
	Demo bool

	// TracerProvider receives the service's traces; nil (tracing off)
	// wraps nothing and starts no span. It is not a setting: the standard
	// OTEL_* variables configure it (internal/tracing), and tests set it.
	TracerProvider trace.TracerProvider
}

// S3's limits on multipart uploads
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
// a part other than the last is 5 MiB to 5 GiB, an upload has at most
// 10,000 parts, and an object is at most 5 TiB.
const (
	MinPartSize   int64 = 5 << 20
	MaxPartSize   int64 = 5 << 30
	MaxParts            = 10_000
	MaxObjectSize int64 = 5 << 40
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// Scope says which commands take a setting, so that each command offers
// only the flags it uses. Settings outside a command's scope keep their
// defaults.
type Scope uint8

const (
	// ForDatabase: every command opens the database.
	ForDatabase Scope = 1 << iota
	// ForBucket: commands that reach the bucket (serving, users delete,
	// reconcile) and so log, and judge uploads in progress.
	ForBucket
	// ForDeletes: commands that delete objects (serving, users delete).
	ForDeletes
	// ForServer: serving only.
	ForServer
	// ForIdentities: serving, and the commands that only need the
	// database (users create --subject and users link name identities at
	// the issuer); not the commands that reach the bucket, which would
	// otherwise fetch the issuer's keys for nothing.
	ForIdentities

	// All is every setting: serving takes them all.
	All = ForDatabase | ForBucket | ForDeletes | ForServer | ForIdentities
)

// Setting describes one setting, for flags, environment and documentation.
type Setting struct {
	Env, Flag, Default, Usage string
	// Range says the values a number setting may take ("from 10ms to 1h");
	// empty for the others.
	Range string
	Scope Scope
}

// EnvAnnotation is the flag annotation that names a setting's environment
// variable, for help texts.
const EnvAnnotation = "env"

// RangeAnnotation is the flag annotation that holds a number setting's
// Range, for help texts.
const RangeAnnotation = "range"

// Register writes every setting's default into cfg, defines the settings
// in scope as flags on fs, and returns those. Call ApplyEnv after parsing.
func Register(fs *pflag.FlagSet, cfg *Config, scope Scope) []Setting {
	var settings []Setting
	add := func(v value, env string, in Scope, usage string) {
		s := Setting{Env: env, Flag: FlagName(env), Default: v.String(), Usage: usage, Scope: in}
		if r, ok := v.(interface{ Range() string }); ok {
			s.Range = r.Range()
		}
		if in&scope == 0 {
			return
		}
		settings = append(settings, s)
		f := fs.VarPF(v, s.Flag, "", usage)
		f.Annotations = map[string][]string{EnvAnnotation: {env}}
		if s.Range != "" {
			f.Annotations[RangeAnnotation] = []string{s.Range}
		}
		if v.Type() == "bool" {
			f.NoOptDefVal = "true" // --flag alone means true
		}
	}
	str := func(p *string, env, def string, in Scope, usage string) {
		*p = def
		add((*stringValue)(p), env, in, usage)
	}
	oneOf := func(p *string, env, def string, choices []string, in Scope, usage string) {
		*p = def
		add(&choiceValue{p: p, choices: choices}, env, in, usage)
	}
	boolean := func(p *bool, env string, def bool, in Scope, usage string) {
		*p = def
		add((*boolValue)(p), env, in, usage)
	}
	// Number settings take the limits of their meaningful values: a value
	// outside them is refused as the setting is read, naming it, before
	// anything is opened or written.
	integer := func(p *int, env string, def int, lim limits[int], in Scope, usage string) {
		*p = def
		add(&intValue{p: p, lim: lim}, env, in, usage)
	}
	bytes := func(p *int64, env string, def int64, lim limits[int64], in Scope, usage string) {
		*p = def
		add(&bytesValue{p: p, lim: lim}, env, in, usage)
	}
	duration := func(p *time.Duration, env string, def time.Duration, lim limits[time.Duration], in Scope, usage string) {
		*p = def
		add(&durationValue{p: p, lim: lim}, env, in, usage)
	}

	str(&cfg.Addr, "ADDR", ":8080", ForServer, "address to listen on")
	str(&cfg.DataDir, "DATA_DIR", "./data", ForDatabase, "directory of the embedded SQLite database and embedded bucket")
	str(&cfg.DatabaseURL, "DATABASE_URL", "", ForDatabase, "sqlite://PATH or postgres://...; default: SQLite file in DATA_DIR")
	str(&cfg.DatabaseSessionURL, "DATABASE_SESSION_URL", "", ForDatabase, "postgres://... reaching PostgreSQL directly, for LISTEN/NOTIFY and the periodic work's lock; needed when DATABASE_URL goes through a pooler in transaction mode")
	str(&cfg.S3Bucket, "S3_BUCKET", "", ForBucket, "bucket for uploads; unset runs an embedded S3 server over DATA_DIR")
	str(&cfg.S3Endpoint, "S3_ENDPOINT", "", ForBucket, "S3 endpoint URL for S3-compatible servers; unset for AWS S3")
	str(&cfg.S3Region, "S3_REGION", "us-east-1", ForBucket, "S3 region")
	boolean(&cfg.S3ForcePathStyle, "S3_FORCE_PATH_STYLE", false, ForBucket, "address buckets by path (http://host/bucket/key), as most S3-compatible servers need")
	bytes(&cfg.S3PartSize, "S3_PART_SIZE", objectstore.DefaultPartSize, between(MinPartSize, MaxPartSize), ForBucket, "size of each part of a multipart upload, in bytes; larger files are sent in parts")
	boolean(&cfg.S3DeleteMarkerOnly, "S3_DELETE_MARKER_ONLY", false, ForBucket, "on versioned buckets, only add a delete marker instead of removing every version")
	bytes(&cfg.MaxUploadSize, "MAX_UPLOAD_SIZE", 100<<20, between(1, MaxObjectSize), ForServer, "largest file uploadFile accepts, in bytes")
	duration(&cfg.UploadTimeout, "UPLOAD_TIMEOUT", 30*time.Minute, between(time.Second, week), ForBucket, "longest time storing one file may take; an upload deleted while still being stored is purged after it")
	duration(&cfg.RequestBodyTimeout, "REQUEST_BODY_TIMEOUT", 10*time.Second, between(time.Second, time.Hour), ForServer, "longest time the body of a request other than an upload may take to arrive; the connection is closed after it")
	duration(&cfg.UploadBodyIdleTimeout, "UPLOAD_BODY_IDLE_TIMEOUT", 30*time.Second, between(time.Second, time.Hour), ForServer, "longest pause in the bytes of an upload's request body; the connection is closed after it")
	duration(&cfg.FailedUploadRetention, "FAILED_UPLOAD_RETENTION", 168*time.Hour, atLeast[time.Duration](0), ForServer, "how long FAILED uploads are kept before the janitor deletes them; 0 keeps them")
	duration(&cfg.DeleteRetention, "DELETE_RETENTION", 0, atLeast[time.Duration](0), ForServer, "how long a user's deleted upload stays in the trash, restorable, before its object is purged; 0 purges at once")
	duration(&cfg.IdempotencyRetention, "IDEMPOTENCY_RETENTION", 24*time.Hour, atLeast[time.Duration](time.Minute), ForServer, "how long the answer to a request sent with an Idempotency-Key is kept and replayed to its retries; the janitor prunes older ones")
	duration(&cfg.AuditRetention, "AUDIT_RETENTION", 2160*time.Hour, atLeast[time.Duration](0), ForServer, "how long audit events are kept before the janitor prunes them; 0 keeps them")
	duration(&cfg.JobRetention, "JOB_RETENTION", 720*time.Hour, atLeast[time.Duration](0), ForServer, "how long finished deletion jobs are kept before the janitor prunes them; 0 keeps them")
	duration(&cfg.JanitorInterval, "JANITOR_INTERVAL", time.Minute, between(10*time.Millisecond, day), ForServer, "how often the janitor looks for stuck PENDING and expired FAILED uploads")
	str(&cfg.CORSAllowedOrigins, "CORS_ALLOWED_ORIGINS", "*", ForServer, "comma-separated origins whose browser pages may call the API; * for any")
	str(&cfg.AuthIssuer, "AUTH_ISSUER", "", ForIdentities, "OpenID Connect issuer URL whose access tokens are accepted as Authorization: Bearer (https://, or http:// on loopback); unset accepts API keys only")
	str(&cfg.AuthAudience, "AUTH_AUDIENCE", "", ForIdentities, "the audience an access token's aud claim must contain; required with AUTH_ISSUER")
	boolean(&cfg.AuthCreateUsers, "AUTH_CREATE_USERS", false, ForServer, "the first valid token of an unknown subject creates its user; false refuses it until users create --subject or users link")
	duration(&cfg.AuthClockSkew, "AUTH_CLOCK_SKEW", time.Minute, between(time.Duration(0), 10*time.Minute), ForServer, "leeway for an access token's exp, nbf and iat against this machine's clock")
	str(&cfg.AuthDefaultScopes, "AUTH_DEFAULT_SCOPES", scopes.DefaultForTokens.String(), ForServer, "scopes of an access token whose scope or scp claim names none of this service's")
	integer(&cfg.RateLimit, "RATE_LIMIT", 600, atLeast(0), ForServer, "requests per API key (or per client address without a valid key) per window; 0 for no limit")
	duration(&cfg.RateLimitWindow, "RATE_LIMIT_WINDOW", time.Minute, between(time.Second, day), ForServer, "the rate limit's sliding window")
	str(&cfg.RedisURL, "REDIS_URL", "", ForServer, "redis://HOST:PORT/DB to share rate limit counts between instances; unset counts in process")
	boolean(&cfg.GraphQLIntrospection, "GRAPHQL_INTROSPECTION", true, ForServer, "allow schema introspection (the playground needs it)")
	integer(&cfg.GraphQLComplexityLimit, "GRAPHQL_COMPLEXITY_LIMIT", 2500, between(1, 1_000_000), ForServer, "largest complexity of one GraphQL operation")
	integer(&cfg.GraphQLDepthLimit, "GRAPHQL_DEPTH_LIMIT", 10, between(1, 100), ForServer, "deepest field nesting of one GraphQL operation")
	duration(&cfg.GraphQLTimeout, "GRAPHQL_TIMEOUT", 30*time.Second, between(time.Second, time.Hour), ForServer, "longest time the work of one GraphQL operation may take (uploadFile's storing excepted); then it is stopped with OPERATION_TIMEOUT")
	integer(&cfg.SubscriptionsPerCredential, "SUBSCRIPTIONS_PER_CREDENTIAL", events.DefaultPerCredential, between(1, 10_000), ForServer, "GraphQL subscriptions one API key or access token may hold open on one instance; the next is refused with TOO_MANY_SUBSCRIPTIONS")
	duration(&cfg.PurgeInlineTimeout, "PURGE_INLINE_TIMEOUT", 5*time.Second, between(10*time.Millisecond, time.Hour), ForDeletes, "how long a delete waits for S3 before leaving the object to the background purger")
	str(&cfg.ReceiptKeyFile, "RECEIPT_KEY_FILE", "", ForDeletes, "file of the Ed25519 keys that sign deletion receipts (created if missing; uploads receipts rotate-key adds one); default: receipt-keys.json in DATA_DIR; every instance needs the same")
	duration(&cfg.PurgePollInterval, "PURGE_POLL_INTERVAL", 2*time.Second, between(10*time.Millisecond, time.Hour), ForServer, "how often the background purger looks for due purges")
	duration(&cfg.PurgeMaxBackoff, "PURGE_MAX_BACKOFF", 5*time.Minute, between(time.Second, day), ForServer, "longest wait between retries of one purge")
	boolean(&cfg.WebhookAllowHTTP, "WEBHOOK_ALLOW_HTTP", false, ForServer, "accept http:// webhook endpoints, not only https://")
	boolean(&cfg.WebhookAllowPrivateNetworks, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", false, ForServer, "let webhook deliveries reach loopback, private and link-local addresses (development and tests only)")
	str(&cfg.WebhookKeyFile, "WEBHOOK_KEY_FILE", "", ForServer, "file of the key that seals webhook signing secrets (created if missing); default: webhook.key in DATA_DIR; every instance needs the same")
	duration(&cfg.WebhookTimeout, "WEBHOOK_TIMEOUT", webhook.DefaultTimeout, between(100*time.Millisecond, time.Hour), ForServer, "longest time one webhook delivery attempt may take")
	duration(&cfg.WebhookMaxBackoff, "WEBHOOK_MAX_BACKOFF", webhook.DefaultMaxBackoff, between(time.Second, day), ForServer, "longest wait between attempts of one webhook delivery")
	duration(&cfg.ShutdownTimeout, "SHUTDOWN_TIMEOUT", 15*time.Second, between(time.Second, day), ForServer, "how long shutdown waits for requests in flight")
	oneOf(&cfg.LogLevel, "LOG_LEVEL", "info", []string{"debug", "info", "warn", "error"}, ForBucket, "debug, info, warn or error")
	oneOf(&cfg.LogFormat, "LOG_FORMAT", "json", []string{"json", "text"}, ForBucket, "json (one object a line, for machines) or text (for a person at a terminal)")
	boolean(&cfg.Demo, "DEMO", false, ForServer, "seed the demo user and uploads on the first start even with S3_BUCKET or DATABASE_URL set")
	return settings
}

// Check refuses settings that are each within their limits but do not go
// together. Call it after ApplyEnv, before anything is opened.
func (c *Config) Check() error {
	// Put sends a file in parts of S3PartSize; S3 refuses part 10,001, so
	// a file that needs more would fail after 10,000 parts were sent.
	if err := c.checkAuth(); err != nil {
		return err
	}
	if c.MaxUploadSize > MaxParts*c.S3PartSize {
		return fmt.Errorf("MAX_UPLOAD_SIZE=%d: a file this large needs more than %d parts of S3_PART_SIZE=%d, more than S3 allows: "+
			"raise S3_PART_SIZE to at least %d or lower MAX_UPLOAD_SIZE", c.MaxUploadSize, MaxParts, c.S3PartSize, (c.MaxUploadSize+MaxParts-1)/MaxParts)
	}
	return nil
}

// checkAuth refuses access token settings that cannot work together.
func (c *Config) checkAuth() error {
	if c.AuthIssuer == "" {
		switch {
		case c.AuthAudience != "":
			return fmt.Errorf("AUTH_AUDIENCE=%s is set but AUTH_ISSUER is not: set both to accept access tokens", c.AuthAudience)
		case c.AuthCreateUsers:
			return fmt.Errorf("AUTH_CREATE_USERS=true needs AUTH_ISSUER: users are made from access tokens")
		}
		return nil
	}
	if err := oidc.CheckURL(c.AuthIssuer); err != nil {
		return fmt.Errorf("AUTH_ISSUER=%s: %w", c.AuthIssuer, err)
	}
	if strings.TrimSpace(c.AuthAudience) == "" {
		return fmt.Errorf("AUTH_AUDIENCE is required with AUTH_ISSUER: tokens are accepted only for this service's audience")
	}
	if _, err := scopes.Parse(c.AuthDefaultScopes); err != nil {
		return fmt.Errorf("AUTH_DEFAULT_SCOPES=%s: %w", c.AuthDefaultScopes, err)
	}
	return nil
}

// FlagName is the flag of the setting env: ADDR is --addr.
func FlagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// Settings lists every setting.
func Settings() []Setting {
	var cfg Config
	return Register(pflag.NewFlagSet("settings", pflag.ContinueOnError), &cfg, All)
}

// Defaults returns the settings with every default applied.
func Defaults() Config {
	var cfg Config
	Register(pflag.NewFlagSet("defaults", pflag.ContinueOnError), &cfg, All)
	return cfg
}

// ApplyEnv sets every setting that was not given on the command line from
// its environment variable, if that is set (even to an empty value). Call
// it after fs.Parse. An error names the variable, its value and the form
// expected: "RATE_LIMIT=abc: want a whole number".
func ApplyEnv(fs *pflag.FlagSet, settings []Setting, lookupEnv func(string) (string, bool)) error {
	for _, s := range settings {
		f := fs.Lookup(s.Flag)
		v, set := lookupEnv(s.Env)
		if f == nil || f.Changed || !set {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("%s=%s: %w", s.Env, v, err)
		}
	}
	return nil
}

// AllowedOrigins is CORSAllowedOrigins as a list.
func (c *Config) AllowedOrigins() []string {
	var origins []string
	for _, o := range strings.Split(c.CORSAllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}

// SQLitePath is the embedded database file.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "uploads.db") }

// WebhookKeyPath is the file of the key that seals webhook secrets.
func (c *Config) WebhookKeyPath() string {
	if c.WebhookKeyFile != "" {
		return c.WebhookKeyFile
	}
	return filepath.Join(c.DataDir, "webhook.key")
}

// ReceiptKeyPath is the file of the keys that sign deletion receipts.
func (c *Config) ReceiptKeyPath() string {
	if c.ReceiptKeyFile != "" {
		return c.ReceiptKeyFile
	}
	return filepath.Join(c.DataDir, "receipt-keys.json")
}

// EmbeddedS3Dir is where the embedded S3 server keeps objects.
func (c *Config) EmbeddedS3Dir() string { return filepath.Join(c.DataDir, "s3") }

// EmbeddedDatabase reports whether the service uses the default SQLite file.
func (c *Config) EmbeddedDatabase() bool { return c.DatabaseURL == "" }

// EmbeddedS3 reports whether the service runs its own S3 server.
func (c *Config) EmbeddedS3() bool { return c.S3Bucket == "" }

// SeedsDemo reports whether a first start seeds the demo user and uploads:
// always on the embedded database and bucket, which are the service's own,
// and elsewhere only when asked, never into someone's real bucket unbidden.
func (c *Config) SeedsDemo() bool { return c.Demo || c.EmbeddedDatabase() && c.EmbeddedS3() }
