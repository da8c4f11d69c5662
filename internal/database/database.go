// Package database opens the Ent client on SQLite (the embedded default) or
// PostgreSQL, chosen by the URL's scheme.
package database

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/ent"
)

// SQLiteURL returns the database URL of a SQLite file.
func SQLiteURL(path string) string { return "sqlite://" + path }

// Options change how Open connects.
type Options struct {
	// Tracer, when set, traces each SQL statement and transaction made
	// within a traced request or job (traced.go); nil wraps nothing.
	Tracer trace.TracerProvider
}

// Open connects to databaseURL (sqlite://PATH or postgres://...) and brings
// the schema up to date with the versioned migrations (see Migrate). Reads
// made with Prepare on the client run as prepared statements.
func Open(ctx context.Context, databaseURL string, opts ...Options) (*ent.Client, error) {
	var o Options
	for _, opt := range opts {
		o = opt
	}
	drv, background, checkpoints, pooled, err := openDriver(ctx, databaseURL, o)
	if err != nil {
		return nil, explainStartError(err, databaseURL)
	}
	d := &driver{Driver: drv, checkpoints: checkpoints, pooled: pooled}
	if background != nil {
		d.background = &driver{Driver: background, pooled: pooled}
	}
	if _, err := Migrate(ctx, drv.DB(), drv.Dialect()); err != nil {
		d.Close()
		return nil, explainStartError(err, databaseURL)
	}
	if drv.Dialect() == dialect.SQLite {
		d.writers = newWriters(func() { checkpoints.wake(); d.commits.wake() })
	}
	return ent.NewClient(ent.Driver(d)), nil
}

// driver is Ent's SQL driver with, on SQLite, transactions queued for
// their turn to write (writers.go) and the WAL checkpointed (checkpoints.go).
type driver struct {
	*entsql.Driver
	writers     *writers      // nil but on SQLite
	checkpoints *checkpointer // nil but on SQLite
	commits     commitWakeups
	pooled      bool // PostgreSQL through a pooler in transaction mode (pooler.go)
	// background is the same database through connections of its own,
	// for background work (see Background); nil but on PostgreSQL.
	background *driver
}

// Background returns the client background work (the queues' workers)
// uses. On PostgreSQL it reaches the database through a few connections of
// its own, part of the instance's (see backgroundConns): requests that
// outnumber the other connections wait for one in the pool's queue, and a
// worker waiting there behind them got a connection only as often as one
// of dozens of callers did, so that under sustained deletes webhook
// deliveries fell further behind the longer the deletes lasted (issue
// 26). Its own connections keep it moving; it shares with requests only the
// server. On SQLite it is client: writes take turns anyway (writers.go).
// Hooks are the client's own: whoever uses both registers them on both.
func Background(client *ent.Client) *ent.Client {
	d, ok := client.Driver().(*driver)
	if !ok || d.background == nil {
		return client
	}
	return ent.NewClient(ent.Driver(d.background))
}

// openDriver opens the database; on SQLite, with its checkpointer running;
// on PostgreSQL, saying whether it goes through a transaction pooler.
func openDriver(ctx context.Context, databaseURL string, opts Options) (drv, background *entsql.Driver, checkpoints *checkpointer, pooled bool, err error) {
	switch {
	case strings.HasPrefix(databaseURL, "sqlite://"):
		path, query, _ := strings.Cut(strings.TrimPrefix(databaseURL, "sqlite://"), "?")
		params, _ := url.ParseQuery(query)
		if err := privateSQLiteFiles(path, params.Get("mode")); err != nil {
			return nil, nil, nil, false, err
		}
		checkpoints = newCheckpointer()
		db := openDB(newSQLiteConnector(path, SQLiteDSN(strings.TrimPrefix(databaseURL, "sqlite://")), checkpoints.wake), dialect.SQLite, opts.Tracer)
		checkpoints.start(db)
		// Every request reads, and new SQLite connections are costly to
		// open (each sets its PRAGMAs): keep enough for concurrent callers.
		db.SetMaxIdleConns(32)
		return entsql.OpenDB(dialect.SQLite, db), nil, checkpoints, false, nil
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		connString, maxConns, err := PostgresPool(databaseURL)
		if err != nil {
			return nil, nil, nil, false, err
		}
		if pooled, err = transactionPooled(ctx, connString); err != nil {
			return nil, nil, nil, false, err
		}
		if pooled {
			if connString, err = withoutNamedStatements(connString); err != nil {
				return nil, nil, nil, false, err
			}
		}
		connector, err := stdlib.GetDefaultDriver().(*stdlib.Driver).OpenConnector(connString)
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("open postgres: %w", err)
		}
		db := openDB(connector, dialect.Postgres, opts.Tracer)
		// Bounded: a burst of callers waits for a connection here instead
		// of taking the server past max_connections, which several
		// instances share, and failing requests with "too many clients".
		// Background work has a few of them to itself (see Background).
		forBackground := backgroundConns(maxConns)
		db.SetMaxOpenConns(maxConns - forBackground)
		db.SetMaxIdleConns(min(8, maxConns-forBackground)) // a few warm connections
		if forBackground > 0 {
			bg := openDB(connector, dialect.Postgres, opts.Tracer)
			bg.SetMaxOpenConns(forBackground)
			bg.SetMaxIdleConns(forBackground)
			background = entsql.OpenDB(dialect.Postgres, bg)
		}
		return entsql.OpenDB(dialect.Postgres, db), background, nil, pooled, nil
	default:
		return nil, nil, nil, false, fmt.Errorf("unsupported DATABASE_URL scheme (want sqlite:// or postgres://): %q", redact(databaseURL))
	}
}

// DefaultPostgresConns is how many connections one instance opens to
// PostgreSQL at most, unless DATABASE_URL's pool_max_conns says otherwise:
// three instances leave a quarter of PostgreSQL's default max_connections
// (100) to everyone else. Background work has backgroundConns of them.
const DefaultPostgresConns = 25

// backgroundConns is how many of an instance's maxConns connections to
// PostgreSQL are background work's own (see Background): a fifth, from 1
// to 4; none if there are fewer than 2, and then it shares them.
func backgroundConns(maxConns int) int {
	if maxConns < 2 {
		return 0
	}
	return min(max(maxConns/5, 1), 4)
}

// PostgresPool returns databaseURL without its pool_max_conns parameter
// (pgxpool's name for it; PostgreSQL itself would refuse it as a setting)
// and the bound it gives, DefaultPostgresConns if none.
func PostgresPool(databaseURL string) (connString string, maxConns int, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		// Not err: url.Error repeats the URL, password and all.
		return "", 0, fmt.Errorf("DATABASE_URL does not parse as a URL")
	}
	q := u.Query()
	if !q.Has("pool_max_conns") {
		return databaseURL, DefaultPostgresConns, nil
	}
	maxConns, err = strconv.Atoi(q.Get("pool_max_conns"))
	if err != nil || maxConns < 1 {
		return "", 0, fmt.Errorf("DATABASE_URL: pool_max_conns must be a whole number of 1 or more, not %q", q.Get("pool_max_conns"))
	}
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String(), maxConns, nil
}

// SQLiteDSN is the go-sqlite3 DSN of the SQLite file at path. It sets what
// concurrent writers need: WAL so that readers never wait for writers,
// BEGIN IMMEDIATE so that a write transaction takes the write lock at its
// start (a deferred one that upgrades later fails with SQLITE_BUSY without
// waiting), and a busy timeout so that writers outside this process, and
// writes outside a transaction, wait instead of failing (this process's
// transactions queue for their turn before that: writers.go).
// synchronous=FULL makes every commit durable before the caller hears of
// it: go-sqlite3 otherwise sets NORMAL with WAL, under which a power cut can
// undo a delete already acknowledged, and whose object may already be gone.
// Foreign keys are off by default in SQLite. Each connection keeps its
// last statementCache statements prepared (go-sqlite3's _stmt_cache_size),
// so the delete's dozen statements are compiled once per connection, not
// once per request.
//
// Parameters in the path (PATH?mode=ro) are kept and win.
func SQLiteDSN(path string) string {
	path, query, _ := strings.Cut(path, "?")
	q, _ := url.ParseQuery(query)
	setDefault := func(k, v string) {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	setDefault("_fk", "1")
	setDefault("_journal_mode", "WAL")
	setDefault("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	setDefault("_txlock", "immediate")
	setDefault("_sync", "FULL")
	setDefault("_stmt_cache_size", strconv.Itoa(statementCache))
	return "file:" + path + "?" + q.Encode()
}

// statementCache is how many prepared statements each SQLite connection
// keeps: more than the distinct statements of the hot paths (a delete,
// its purge's end, the key lookup), few enough to cost little memory.
const statementCache = 64

// redact drops the password from a URL for error messages.
func redact(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
