package database

import (
	"context"
	"fmt"
	"sync"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
)

// Group commits the transactions of concurrent callers together: on
// SQLite, where every commit waits for the disk (synchronous=FULL) and one
// writer commits at a time, the callers that arrive while a commit is
// under way share the next one, and its single fsync. Each caller's work
// runs in its own savepoint of the shared transaction, so one caller's
// failure undoes only its own work; each caller hears its outcome only
// once the shared transaction has committed (or failed, which undoes the
// work of everyone in it). Durability is unchanged: nobody is told of a
// commit before it is on disk.
//
// On PostgreSQL, whose commits already share WAL flushes, and where a
// longer transaction would hold row locks other instances wait for, Do is
// WithTx.
type Group struct {
	client  *ent.Client
	enabled bool

	mu      sync.Mutex
	pending []*call
	running bool
	arrived int // callers ever, for tests
}

// maxGroup bounds the callers of one transaction, so that the first of
// them does not wait for many others' work.
const maxGroup = 64

// NewGroup returns a Group of client's transactions: grouped on SQLite,
// one each on PostgreSQL.
func NewGroup(client *ent.Client) *Group {
	return &Group{client: client, enabled: Dialect(client) == dialect.SQLite}
}

type call struct {
	asked    context.Context // the caller's: done means it is too late to begin
	ctx      context.Context // asked, without its cancellation
	fn       func(ctx context.Context, tx *ent.Tx) error
	done     chan struct{}
	err      error
	panicked any
}

// Do runs fn in a transaction, possibly shared with other callers' (see
// Group), and returns fn's error as it is, or the commit's. If ctx is done
// before fn begins, fn does not run and Do returns ctx's error. Once fn has
// begun, it runs to its end with ctx's values but not its cancellation (a
// statement interrupted on SQLite may roll back the whole transaction,
// others' work with it), and Do waits for the outcome, so that a caller
// never reports a failure for work that committed. A panic in fn is Do's.
func (g *Group) Do(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) error {
	if !g.enabled {
		return WithTx(ctx, g.client, func(tx *ent.Tx) error { return fn(ctx, tx) })
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{asked: ctx, ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	g.arrived++
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	<-c.done
	if c.panicked != nil {
		panic(c.panicked)
	}
	return c.err
}

// run commits the pending callers' work, a group at a time, until none is
// left: those that arrive during a commit make the next group.
func (g *Group) run() {
	for {
		g.mu.Lock()
		batch := g.pending[:min(len(g.pending), maxGroup)]
		g.pending = g.pending[len(batch):]
		if len(batch) == 0 {
			g.pending = nil
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(batch)
	}
}

// commit runs the batch's work in one transaction and tells each caller.
func (g *Group) commit(batch []*call) {
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	var ready []*call
	for _, c := range batch {
		if c.err = c.asked.Err(); c.err == nil {
			ready = append(ready, c)
		}
	}
	switch len(ready) {
	case 0:
		return
	case 1:
		c := ready[0]
		c.err = WithTx(c.ctx, g.client, func(tx *ent.Tx) error { return c.attempt(tx) })
		return
	}
	// Not bounded by a deadline: database/sql rolls a transaction back when
	// the context it began with is done, which would undo the work of callers
	// already run. Waiting for the turn to write is bounded by the writers'
	// queue (busyTimeout), as for any transaction.
	ctx := context.Background()
	tx, err := g.client.Tx(ctx)
	if err != nil {
		failAll(ready, fmt.Errorf("begin transaction: %w", err))
		return
	}
	var committed []*call
	for i, c := range ready {
		savepoint := fmt.Sprintf("caller%d", i)
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
			_ = tx.Rollback()
			failAll(ready, fmt.Errorf("begin savepoint: %w", err))
			return
		}
		if c.attempt(tx) == nil {
			committed = append(committed, c)
		} else if _, err := tx.ExecContext(ctx, "ROLLBACK TO "+savepoint); err != nil {
			// SQLite rolled the whole transaction back (a full disk, an
			// I/O error): everyone's work is gone, and everyone is told.
			_ = tx.Rollback()
			failAll(ready, fmt.Errorf("roll back to savepoint: %w (after %w)", err, c.err))
			return
		}
		if _, err := tx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
			_ = tx.Rollback()
			failAll(ready, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		failAll(committed, fmt.Errorf("commit transaction: %w", err))
	}
}

// attempt runs the caller's work in tx, keeping its error or panic.
func (c *call) attempt(tx *ent.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			c.panicked = v
			err = fmt.Errorf("panic: %v", v)
		}
		c.err = err
	}()
	return c.fn(c.ctx, tx)
}

// failAll gives every caller of a failed transaction its error, but those
// whose own work failed, who keep theirs.
func failAll(batch []*call, err error) {
	for _, c := range batch {
		if c.err == nil && c.panicked == nil {
			c.err = err
		}
	}
}
