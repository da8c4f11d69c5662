package database

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/safedelete/uploads/ent"
)

// Statement is a read of fixed text run as a prepared statement: parsed and
// planned once per connection instead of on every call, which for the
// reads every request makes (the API key lookup, a delete's ownership
// check) costs more than running them.
type Statement struct {
	client *ent.Client
	query  string
	db     *sql.DB // nil when the client was not opened by Open

	mu   sync.Mutex // held while preparing
	stmt atomic.Pointer[sql.Stmt]
}

// Prepare returns query as a statement of client, prepared on its first
// run. On a client not opened by Open, or through a transaction pooler, it
// runs as a plain query.
func Prepare(client *ent.Client, query string) *Statement {
	s := &Statement{client: client, query: query}
	// Through a transaction pooler a named statement would be prepared
	// on one server connection and run on another.
	if d, ok := client.Driver().(*driver); ok && !d.pooled {
		s.db = d.DB()
	}
	return s
}

// QueryContext runs the statement with args. database/sql prepares it
// again on each connection it runs on, once.
func (s *Statement) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	if s.db == nil {
		return s.client.QueryContext(ctx, s.query, args...)
	}
	stmt, err := s.prepared(ctx)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

// prepared returns the prepared statement, preparing it the first time. A
// statement that fails to prepare is not kept: the next run tries again.
func (s *Statement) prepared(ctx context.Context) (*sql.Stmt, error) {
	if stmt := s.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if stmt := s.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	stmt, err := s.db.PrepareContext(ctx, s.query)
	if err != nil {
		return nil, err
	}
	s.stmt.Store(stmt)
	return stmt, nil
}
