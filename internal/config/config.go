// Package config defines every setting of the service. Each is an
// environment variable and a flag of the same name (ADDR and --addr); a flag
// wins over the variable, the variable over the default.
package config

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/safedelete/uploads/internal/objectstore"
)

// Config holds the settings.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string

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
	JanitorInterval       time.Duration

	RequestBodyTimeout    time.Duration
	UploadBodyIdleTimeout time.Duration

	CORSAllowedOrigins string

	RateLimit       int
	RateLimitWindow time.Duration
	RedisURL        string

	GraphQLIntrospection   bool
	GraphQLComplexityLimit int
	GraphQLDepthLimit      int

	PurgeInlineTimeout time.Duration
	PurgePollInterval  time.Duration
	PurgeMaxBackoff    time.Duration

	ShutdownTimeout time.Duration
	LogLevel        string
}

// Setting describes one setting, for flags, environment and documentation.
type Setting struct {
	Env, Flag, Default, Usage string
}

// Register defines every setting as a flag on fs, writing into cfg when fs
// is parsed. Call Apply after parsing.
func Register(fs *flag.FlagSet, cfg *Config) []Setting {
	var settings []Setting
	add := func(env, def, usage string, define func(name, usage string)) {
		name := strings.ReplaceAll(strings.ToLower(env), "_", "-")
		define(name, usage)
		settings = append(settings, Setting{Env: env, Flag: name, Default: def, Usage: usage})
	}
	str := func(p *string, env, def, usage string) {
		add(env, def, usage, func(name, usage string) { fs.StringVar(p, name, def, usage) })
	}
	boolean := func(p *bool, env string, def bool, usage string) {
		add(env, fmt.Sprint(def), usage, func(name, usage string) { fs.BoolVar(p, name, def, usage) })
	}
	integer := func(p *int, env string, def int, usage string) {
		add(env, fmt.Sprint(def), usage, func(name, usage string) { fs.IntVar(p, name, def, usage) })
	}
	bytes := func(p *int64, env string, def int64, usage string) {
		add(env, fmt.Sprint(def), usage, func(name, usage string) { fs.Int64Var(p, name, def, usage) })
	}
	duration := func(p *time.Duration, env string, def time.Duration, usage string) {
		add(env, def.String(), usage, func(name, usage string) { fs.DurationVar(p, name, def, usage) })
	}

	str(&cfg.Addr, "ADDR", ":8080", "address to listen on")
	str(&cfg.DataDir, "DATA_DIR", "./data", "directory of the embedded SQLite database and embedded bucket")
	str(&cfg.DatabaseURL, "DATABASE_URL", "", "sqlite://PATH or postgres://...; default: SQLite file in DATA_DIR")
	str(&cfg.S3Bucket, "S3_BUCKET", "", "bucket for uploads; unset runs an embedded S3 server over DATA_DIR")
	str(&cfg.S3Endpoint, "S3_ENDPOINT", "", "S3 endpoint URL for S3-compatible servers; unset for AWS S3")
	str(&cfg.S3Region, "S3_REGION", "us-east-1", "S3 region")
	boolean(&cfg.S3ForcePathStyle, "S3_FORCE_PATH_STYLE", false, "address buckets by path (http://host/bucket/key), as most S3-compatible servers need")
	bytes(&cfg.S3PartSize, "S3_PART_SIZE", objectstore.DefaultPartSize, "size of each part of a multipart upload, in bytes; larger files are sent in parts")
	boolean(&cfg.S3DeleteMarkerOnly, "S3_DELETE_MARKER_ONLY", false, "on versioned buckets, only add a delete marker instead of removing every version")
	bytes(&cfg.MaxUploadSize, "MAX_UPLOAD_SIZE", 100<<20, "largest file uploadFile accepts, in bytes")
	duration(&cfg.UploadTimeout, "UPLOAD_TIMEOUT", 30*time.Minute, "longest time storing one file may take; an upload deleted while still being stored is purged after it")
	duration(&cfg.RequestBodyTimeout, "REQUEST_BODY_TIMEOUT", 10*time.Second, "longest time the body of a request other than an upload may take to arrive; the connection is closed after it")
	duration(&cfg.UploadBodyIdleTimeout, "UPLOAD_BODY_IDLE_TIMEOUT", 30*time.Second, "longest pause in the bytes of an upload's request body; the connection is closed after it")
	duration(&cfg.FailedUploadRetention, "FAILED_UPLOAD_RETENTION", 168*time.Hour, "how long FAILED uploads are kept before the janitor deletes them; 0 keeps them")
	duration(&cfg.JanitorInterval, "JANITOR_INTERVAL", time.Minute, "how often the janitor looks for stuck PENDING and expired FAILED uploads")
	str(&cfg.CORSAllowedOrigins, "CORS_ALLOWED_ORIGINS", "*", "comma-separated origins whose browser pages may call the API; * for any")
	integer(&cfg.RateLimit, "RATE_LIMIT", 600, "requests per API key (or per client address without a valid key) per window; 0 for no limit")
	duration(&cfg.RateLimitWindow, "RATE_LIMIT_WINDOW", time.Minute, "the rate limit's sliding window")
	str(&cfg.RedisURL, "REDIS_URL", "", "redis://HOST:PORT/DB to share rate limit counts between instances; unset counts in process")
	boolean(&cfg.GraphQLIntrospection, "GRAPHQL_INTROSPECTION", true, "allow schema introspection (the playground needs it)")
	integer(&cfg.GraphQLComplexityLimit, "GRAPHQL_COMPLEXITY_LIMIT", 1000, "largest complexity of one GraphQL operation")
	integer(&cfg.GraphQLDepthLimit, "GRAPHQL_DEPTH_LIMIT", 10, "deepest field nesting of one GraphQL operation")
	duration(&cfg.PurgeInlineTimeout, "PURGE_INLINE_TIMEOUT", 5*time.Second, "how long a delete waits for S3 before leaving the object to the background purger")
	duration(&cfg.PurgePollInterval, "PURGE_POLL_INTERVAL", 2*time.Second, "how often the background purger looks for due purges")
	duration(&cfg.PurgeMaxBackoff, "PURGE_MAX_BACKOFF", 5*time.Minute, "longest wait between retries of one purge")
	duration(&cfg.ShutdownTimeout, "SHUTDOWN_TIMEOUT", 15*time.Second, "how long shutdown waits for requests in flight")
	str(&cfg.LogLevel, "LOG_LEVEL", "info", "debug, info, warn or error")
	return settings
}

// Defaults returns the settings with every default applied.
func Defaults() Config {
	var cfg Config
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	Register(fs, &cfg)
	return cfg
}

// ApplyEnv sets every flag that was not given on the command line from its
// environment variable, if that is set (even to an empty value). Call it
// after fs.Parse.
func ApplyEnv(fs *flag.FlagSet, settings []Setting, lookupEnv func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		v, set := lookupEnv(s.Env)
		if !set || given[s.Flag] {
			continue
		}
		if err := fs.Set(s.Flag, v); err != nil {
			return fmt.Errorf("%s: %w", s.Env, err)
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

// EmbeddedS3Dir is where the embedded S3 server keeps objects.
func (c *Config) EmbeddedS3Dir() string { return filepath.Join(c.DataDir, "s3") }

// EmbeddedDatabase reports whether the service uses the default SQLite file.
func (c *Config) EmbeddedDatabase() bool { return c.DatabaseURL == "" }

// EmbeddedS3 reports whether the service runs its own S3 server.
func (c *Config) EmbeddedS3() bool { return c.S3Bucket == "" }
