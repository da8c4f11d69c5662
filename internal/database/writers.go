package database

import (
	"context"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// writers lets one transaction at a time into a SQLite database. SQLite
// has one writer at a time anyway (transactions begin IMMEDIATE), but a
// writer that finds the lock taken waits in SQLite's busy handler, which
// sleeps 1, 2, 5, 10 … 100 ms between tries whatever the holder's pace: with
// a dozen concurrent deletes, most of a delete's time was spent asleep
// while the lock was free. Queued here instead, the next transaction
// begins as soon as the last one ends.
//
// The wait is bounded by the busy timeout SQLite would have waited
// (busyTimeout): past it, beginning fails as SQLite's "database is locked"
// would. Writes outside transactions still meet SQLite's own lock; none is
// on a hot path.
type writers struct {
	turn chan struct{}
	// committed is called after each commit, once it is done (it wakes
	// the checkpointer: checkpoints.go).
	committed func()
}

// busyTimeout is how long a writer waits: for its turn here, and (as the
// _busy_timeout SQLiteDSN gives by default) for SQLite's lock.
const busyTimeout = 10 * time.Second

func newWriters(committed func()) *writers {
	return &writers{turn: make(chan struct{}, 1), committed: committed}
}

// begin waits for the turn to write, then begins a transaction of drv that
// gives the turn back when it commits or rolls back.
func (w *writers) begin(ctx context.Context, drv *entsql.Driver, opts *entsql.TxOptions) (dialect.Tx, error) {
	wait := time.NewTimer(busyTimeout)
	defer wait.Stop()
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-wait.C:
		return nil, fmt.Errorf("begin transaction: no turn to write within %s (database is locked)", busyTimeout)
	}
	done := sync.OnceFunc(func() { <-w.turn })
	tx, err := drv.BeginTx(ctx, opts)
	if err != nil {
		done()
		return nil, err
	}
	return &turnTx{Tx: tx.(*entsql.Tx), done: done, committed: w.committed}, nil
}

// turnTx is a transaction that holds the turn to write until it ends.
// It embeds Ent's own so that ExecContext and QueryContext stay reachable.
type turnTx struct {
	*entsql.Tx
	done, committed func()
}

func (t *turnTx) Commit() error {
	defer t.done()
	err := t.Tx.Commit()
	if err == nil {
		t.committed()
	}
	return err
}

func (t *turnTx) Rollback() error {
	defer t.done()
	return t.Tx.Rollback()
}

// Tx and BeginTx are what client.Tx calls: on SQLite, a transaction waits
// for its turn to write.
func (d *driver) Tx(ctx context.Context) (dialect.Tx, error) { return d.BeginTx(ctx, nil) }

func (d *driver) BeginTx(ctx context.Context, opts *entsql.TxOptions) (dialect.Tx, error) {
	if d.writers == nil {
		return d.Driver.BeginTx(ctx, opts)
	}
	return d.writers.begin(ctx, d.Driver, opts)
}
