package database

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"

	"github.com/safedelete/uploads/ent"
)

// A pooler in transaction mode (PgBouncer's pool_mode=transaction, and
// others like it) hands each transaction, or each statement outside one, to
// whichever server connection is free. Three things the service does need
// one server connection for as long as the client's: named prepared
// statements (pgx prepares and caches them by default, database/sql's
// Prepare names one), LISTEN, and the leader's session advisory lock.
// Through such a pooler the first fails at once ("prepared statement …
// does not exist"), the other two fail quietly: wake-ups are lost, and the
// lock stays with a server connection that other clients then share.
//
// So the service finds out at start: through a transaction pooler its
// statements avoid named prepared statements (pgx's cache_describe mode:
// one round trip, descriptions cached, the unnamed statement only), and
// LISTEN and the lock go to DATABASE_SESSION_URL (app.New refuses to start
// without it).

// poolerRounds is how many times transactionPooled asks.
const poolerRounds = 4

// transactionPooled reports whether connString reaches PostgreSQL through
// a pooler that shares one server connection among open clients. It opens
// two connections and asks each in turn which server process serves it:
// two open connections to PostgreSQL itself, or to a pooler in session
// mode, never share one; a transaction pooler gives the second the server
// the first has just released (PgBouncer reuses the last one freed). A
// pooler that happened to give a fresh server connection each time would
// go unnoticed, so it asks more than once.
func transactionPooled(ctx context.Context, connString string) (bool, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return false, err
	}
	// The simple protocol: no statement of this check is prepared, which
	// through a transaction pooler would fail the check itself.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	var conns [2]*pgx.Conn
	for i := range conns {
		if conns[i], err = pgx.ConnectConfig(ctx, cfg); err != nil {
			return false, err
		}
		defer conns[i].Close(context.WithoutCancel(ctx))
	}
	for range poolerRounds {
		var pids [2]uint32
		for i, c := range conns {
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pids[i]); err != nil {
				return false, err
			}
		}
		if pids[0] == pids[1] {
			return true, nil
		}
	}
	return false, nil
}

// withoutNamedStatements is connString with pgx told to prepare no named
// statement, unless it already says how to run queries.
func withoutNamedStatements(connString string) (string, error) {
	u, err := url.Parse(connString)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL does not parse as a URL")
	}
	q := u.Query()
	if !q.Has("default_query_exec_mode") {
		q.Set("default_query_exec_mode", "cache_describe")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// TransactionPooled reports whether client reaches PostgreSQL through a
// pooler in transaction mode (found when Open opened it).
func TransactionPooled(client *ent.Client) bool {
	d, ok := client.Driver().(*driver)
	return ok && d.pooled
}

// SessionURL checks that databaseURL, meant for what needs one server
// connection per client (LISTEN, a session lock), reaches PostgreSQL
// directly or through a pooler in session mode.
func SessionURL(ctx context.Context, databaseURL string) error {
	connString, _, err := PostgresPool(databaseURL)
	if err != nil {
		return err
	}
	pooled, err := transactionPooled(ctx, connString)
	if err != nil {
		return fmt.Errorf("DATABASE_SESSION_URL: %w", err)
	}
	if pooled {
		return fmt.Errorf("DATABASE_SESSION_URL %s goes through a pooler in transaction mode too: it must reach PostgreSQL directly, or through a pooler in session mode", redact(databaseURL))
	}
	return nil
}
