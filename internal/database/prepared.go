package database

import (
	"context"
	"database/sql"
	"sync"

	entsql "entgo.io/ent/dialect/sql"
)

// Prepared marks ctx so that the read the client runs with it
// (client.QueryContext) is a prepared statement: parsed and planned once per
// connection instead of on every call, which for the reads every request
// makes (the API key lookup, a delete's ownership check) costs more than
// running them. Only for statements whose text is fixed: each distinct one
// is kept for the life of the client.
//
// Like Ent's own sql.WithVar, it travels in the context so that the hot
// paths keep the *ent.Client they are given; a client not opened by Open
// ignores the mark and runs the statement as before.
func Prepared(ctx context.Context) context.Context {
	return context.WithValue(ctx, preparedKey{}, true)
}

type preparedKey struct{}

// driver is Ent's SQL driver, with the reads marked Prepared run as
// prepared statements and, on SQLite, transactions queued for their turn
// to write (writers.go).
type driver struct {
	*entsql.Driver
	writers     *writers      // nil but on SQLite
	checkpoints *checkpointer // nil but on SQLite

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt // by query text
}

// QueryContext is what client.QueryContext calls.
func (d *driver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if ctx.Value(preparedKey{}) == nil {
		return d.Driver.QueryContext(ctx, query, args...)
	}
	stmt, err := d.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

// prepared returns the statement of query, preparing it the first time.
// database/sql then prepares it again on each connection it runs on, once.
func (d *driver) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	d.mu.RLock()
	stmt := d.stmts[query]
	d.mu.RUnlock()
	if stmt != nil {
		return stmt, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if stmt := d.stmts[query]; stmt != nil {
		return stmt, nil
	}
	stmt, err := d.DB().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if d.stmts == nil {
		d.stmts = map[string]*sql.Stmt{}
	}
	d.stmts[query] = stmt
	return stmt, nil
}
