package database

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// In WAL mode a commit appends the pages it changed to the WAL; a
// checkpoint copies them back into the database file. By default the
// connection whose commit takes the WAL past 1,000 pages runs that
// checkpoint before its commit returns: a batch delete (4,000 rows and
// their indexes, over 1,000 pages) paid for one on nearly every commit,
// about 45 ms of its 150. Here the checkpoints run in the background
// instead, right after commits, while the writers go on: the WAL is copied
// back as promptly, off the writers' path.
//
// Two things wake the checkpointer: a transaction of this process once its
// commit is done (writers.go), and SQLite's commit hook on every
// connection, which also sees writes outside transactions but fires just
// before their commit completes (a checkpoint then may miss that commit's
// pages; the next wake takes them).
//
// Durability is unchanged: a commit is durable once it is in the WAL
// (synchronous=FULL), checkpointed or not. walBackstop keeps SQLite's own
// automatic checkpoint, at a larger size, for the case where the
// background checkpoints cannot keep up.
const (
	// walBackstop is the WAL size, in pages, past which a commit still
	// checkpoints itself (SQLite's default: 1,000).
	walBackstop = 10_000
	// checkpointDelay is how long the checkpointer waits after it is woken
	// before it checkpoints: a burst of commits is checkpointed once.
	checkpointDelay = 10 * time.Millisecond
	// checkpointInterval is the least time between two checkpoints: under
	// a stream of small commits (single deletes, hundreds a second) a page
	// that every commit changes is copied back once per interval, not once
	// per commit. A checkpoint still comes within this of any commit.
	checkpointInterval = 200 * time.Millisecond
)

// sqliteConnector opens connections to a SQLite database that leave
// checkpoints to a checkpointer (up to walBackstop), and wake it as they
// commit.
type sqliteConnector struct {
	dsn     string
	driver  *sqlite3.SQLiteDriver
	connect func(context.Context) (sqldriver.Conn, error) // (observe.go)
}

func newSQLiteConnector(path, dsn string, wake func()) *sqliteConnector {
	c := &sqliteConnector{dsn: dsn, driver: &sqlite3.SQLiteDriver{
		ConnectHook: func(conn *sqlite3.SQLiteConn) error {
			if _, err := conn.Exec("PRAGMA wal_autocheckpoint = "+strconv.Itoa(walBackstop), nil); err != nil {
				return err
			}
			// Called as a commit is about to complete; returning 0 lets it.
			conn.RegisterCommitHook(func() int { wake(); return 0 })
			return nil
		},
	}}
	c.connect = observed(path, c.open)
	return c
}

// open opens a connection. Opening runs the DSN's PRAGMAs, and switching a
// new database file to WAL needs a lock that SQLite does not wait for (no
// busy handler runs there): when several instances open one new file at
// once, some get "database is locked" at once. It is tried again, as a
// busy handler would, for up to busyTimeout.
func (c *sqliteConnector) open(ctx context.Context) (sqldriver.Conn, error) {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		conn, err := c.driver.Open(c.dsn)
		var sqliteErr sqlite3.Error
		if err == nil || !errors.As(err, &sqliteErr) || (sqliteErr.Code != sqlite3.ErrBusy && sqliteErr.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func (c *sqliteConnector) Connect(ctx context.Context) (sqldriver.Conn, error) { return c.connect(ctx) }
func (c *sqliteConnector) Driver() sqldriver.Driver                            { return c.driver }

// checkpointer runs a PASSIVE checkpoint (one that waits for no reader or
// writer) shortly after a commit, at most once per checkpointInterval.
type checkpointer struct {
	wakeup  chan struct{}
	stop    chan struct{}
	closing sync.Once
	stopped sync.WaitGroup
}

func newCheckpointer() *checkpointer {
	return &checkpointer{wakeup: make(chan struct{}, 1), stop: make(chan struct{})}
}

// wake asks for a checkpoint soon; it never blocks a commit.
func (c *checkpointer) wake() {
	select {
	case c.wakeup <- struct{}{}:
	default: // one is asked for already
	}
}

// start runs the checkpoints on db until close.
func (c *checkpointer) start(db *sql.DB) {
	c.stopped.Go(func() {
		for await(c.stop, c.wakeup) && await(c.stop, time.After(checkpointDelay)) {
			// A failure (the database closing, a disk error) leaves the
			// pages in the WAL, where they are as durable; the next commit
			// tries again, and past walBackstop the writers do.
			_, _ = db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			if !await(c.stop, time.After(checkpointInterval)) { // a wake meanwhile waits in c.wakeup
				return
			}
		}
	})
}

// await waits for ch; it reports false if stop is closed first.
func await[T any](stop <-chan struct{}, ch <-chan T) bool {
	select {
	case <-stop:
		return false
	case <-ch:
		return true
	}
}

// close stops the checkpoints; the database's last connection to close
// checkpoints what is left.
func (c *checkpointer) close() {
	c.closing.Do(func() { close(c.stop) })
	c.stopped.Wait()
}

// Close stops the checkpointer, if any, then closes the database, and
// background work's connections to it.
func (d *driver) Close() error {
	if d.checkpoints != nil {
		d.checkpoints.close()
	}
	err := d.Driver.Close()
	if d.background != nil {
		err = errors.Join(err, d.background.Close())
	}
	return err
}
