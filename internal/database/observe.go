package database

import (
	"context"
	sqldriver "database/sql/driver"
	"sync"
)

// observers are the functions that see every statement run on a SQLite
// file, by the file's path: what tests use to count the statements a
// request costs. Nothing is observed unless a test asks.
var observers sync.Map // path -> func(statement string)

// Observe makes every statement run on the SQLite file at path, by a
// client opened after it (Open), pass through see first: each query or
// exec with its text, and "BEGIN", "COMMIT" and "ROLLBACK" for
// transactions. It returns the function that stops it. For measuring only:
// it slows every statement a little.
func Observe(path string, see func(statement string)) (stop func()) {
	observers.Store(path, see)
	return func() { observers.Delete(path) }
}

// observed returns connect, or connect wrapped so that see sees what its
// connections run.
func observed(path string, connect func(context.Context) (sqldriver.Conn, error)) func(context.Context) (sqldriver.Conn, error) {
	v, ok := observers.Load(path)
	if !ok {
		return connect
	}
	see := v.(func(string))
	return func(ctx context.Context) (sqldriver.Conn, error) {
		conn, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		return &observedConn{conn: conn.(sqliteConn), see: see}, nil
	}
}

// sqliteConn is what go-sqlite3's connection does that database/sql uses.
type sqliteConn interface {
	sqldriver.Conn
	sqldriver.ConnBeginTx
	sqldriver.ConnPrepareContext
	sqldriver.ExecerContext
	sqldriver.QueryerContext
	sqldriver.Pinger
}

type observedConn struct {
	conn sqliteConn
	see  func(string)
}

func (c *observedConn) Prepare(query string) (sqldriver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *observedConn) PrepareContext(ctx context.Context, query string) (sqldriver.Stmt, error) {
	stmt, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &observedStmt{Stmt: stmt, query: query, see: c.see}, nil
}

func (c *observedConn) Close() error { return c.conn.Close() }

func (c *observedConn) Begin() (sqldriver.Tx, error) {
	return c.BeginTx(context.Background(), sqldriver.TxOptions{})
}

func (c *observedConn) BeginTx(ctx context.Context, opts sqldriver.TxOptions) (sqldriver.Tx, error) {
	c.see("BEGIN")
	tx, err := c.conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &observedTx{tx: tx, see: c.see}, nil
}

func (c *observedConn) ExecContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	c.see(query)
	return c.conn.ExecContext(ctx, query, args)
}

func (c *observedConn) QueryContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	c.see(query)
	return c.conn.QueryContext(ctx, query, args)
}

func (c *observedConn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

type observedTx struct {
	tx  sqldriver.Tx
	see func(string)
}

func (t *observedTx) Commit() error   { t.see("COMMIT"); return t.tx.Commit() }
func (t *observedTx) Rollback() error { t.see("ROLLBACK"); return t.tx.Rollback() }

// observedStmt is a prepared statement; each run is seen.
type observedStmt struct {
	sqldriver.Stmt
	query string
	see   func(string)
}

func (s *observedStmt) ExecContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	s.see(s.query)
	return s.Stmt.(sqldriver.StmtExecContext).ExecContext(ctx, args)
}

func (s *observedStmt) QueryContext(ctx context.Context, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
	s.see(s.query)
	return s.Stmt.(sqldriver.StmtQueryContext).QueryContext(ctx, args)
}
