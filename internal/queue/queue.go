// Package queue is the one mechanism of the service's background work:
// claiming due rows of a job table with a lease (Claim), waking the
// workers of a kind of job when one becomes due (Queue.WakeOnDue, Wakeups,
// Listen), and electing the one instance that runs periodic work
// (Queue.Leads). Purges and webhook deliveries are kinds of job: each has
// its own table (an integer id, next_attempt_at, attempts), its own worker
// loop and its own retries, with backoff.Delay between attempts.
//
// It is not River (riverqueue/river), which does the same on PostgreSQL
// with one shared job table: the service runs on SQLite as well, enqueues
// inside its Ent transactions on both engines (a delete commits with its
// purges, audit events and deliveries), sends a whole batch of purges as
// DeleteObjects requests rather than job by job, and picks deliveries fairly
// among owners and endpoints; a generic queue would leave all of that to
// be built around it, and a second schema and driver to run. What it takes
// from River is the pattern: one UPDATE … RETURNING of rows a sub-select
// locked FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY to wake workers, and a
// leader holding an advisory lock.
package queue

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/database"
)

// channel is the PostgreSQL channel of wake-ups. Its payload is the
// schema and the kind of job, "public purge": instances of another
// deployment, in another schema of the same database, ignore it.
const channel = "safedelete_queue"

// Queue wakes workers and elects the leader of one instance.
type Queue struct {
	client      *ent.Client
	postgres    bool
	databaseURL string // PostgreSQL's, for the connections of Listen and Leads
	logger      *slog.Logger
	// OnLeadership, when set, hears each change of leadership (metrics).
	OnLeadership func(leads bool)

	mu        sync.Mutex
	wakeups   map[string][]chan struct{} // by kind
	listening chan struct{}              // closed once Listen listens

	election sync.Mutex // held over round trips: apart from mu, so that wake-ups never wait for it
	leader   *pgx.Conn  // holds the advisory lock while this instance leads
	leads    bool
	elected  bool // Leads ran once
}

// New returns the queue of client, a client Open of package database
// returned for databaseURL.
func New(client *ent.Client, databaseURL string, logger *slog.Logger) *Queue {
	if connString, _, err := database.PostgresPool(databaseURL); err == nil {
		databaseURL = connString // a single connection: no pool parameters
	}
	return &Queue{
		client: client, postgres: database.Dialect(client) == dialect.Postgres, databaseURL: databaseURL,
		logger: logger, wakeups: map[string][]chan struct{}{}, listening: make(chan struct{}),
	}
}

// Wakeups returns a channel that receives when a job of kind may have
// become due: made due in this process, or, on PostgreSQL, in any instance.
// A worker waits on it besides its poll interval, which stays the fallback.
// Wake-ups while the worker is busy coalesce into one.
func (q *Queue) Wakeups(kind string) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := make(chan struct{}, 1)
	q.wakeups[kind] = append(q.wakeups[kind], c)
	return c
}

// wake wakes this process's workers of kind.
func (q *Queue) wake(kind string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range q.wakeups[kind] {
		select {
		case c <- struct{}{}:
		default: // one is pending already
		}
	}
}

// WakeOnDue returns the hook, for the Ent client of kind's table, that
// wakes kind's workers whenever a row is written due now (created or
// updated with next_attempt_at not in the future): in a transaction, when
// it commits, and never if it rolls back. Every path that makes a job due
// now (an enqueue, an attempt skipped, a repair) wakes the workers so,
// without knowing about them. On PostgreSQL it is a NOTIFY, sent in the
// transaction (delivered at commit) to every instance's Listen; on SQLite,
// which one instance uses, the workers of this process are woken directly.
func (q *Queue) WakeOnDue(kind string) ent.Hook {
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if err != nil || !m.Op().Is(ent.OpCreate|ent.OpUpdate|ent.OpUpdateOne) || !dueNow(m) {
				return v, err
			}
			if tx, txErr := m.(interface{ Tx() (*ent.Tx, error) }).Tx(); txErr == nil {
				tx.OnCommit(q.wakeAtCommit(kind))
				return v, nil
			}
			if q.postgres {
				if _, err := q.client.ExecContext(ctx, notifySQL, channel, kind); err != nil {
					q.logger.WarnContext(ctx, "queue: notify", "kind", kind, "error", err) // the workers' poll finds it
				}
			} else {
				q.wake(kind)
			}
			return v, nil
		})
	}
}

// notifySQL sends a wake-up to every instance listening.
const notifySQL = "SELECT pg_notify($1, current_schema() || ' ' || $2)"

func dueNow(m ent.Mutation) bool {
	v, ok := m.Field(ColumnDue)
	at, isTime := v.(time.Time)
	return ok && isTime && !at.After(time.Now())
}

// notifying marks the context of a commit whose wake-up of a kind an
// outer commit hook sends: a transaction that wrote many due rows (one
// hook each) wakes the workers once.
type notifying string

func (q *Queue) wakeAtCommit(kind string) ent.CommitHook {
	return func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			if ctx.Value(notifying(kind)) != nil {
				return next.Commit(ctx, tx)
			}
			if q.postgres {
				if _, err := tx.ExecContext(ctx, notifySQL, channel, kind); err != nil {
					return err // the transaction failed: it must not commit half
				}
			}
			if err := next.Commit(context.WithValue(ctx, notifying(kind), true), tx); err != nil {
				return err
			}
			if !q.postgres {
				q.wake(kind)
			}
			return nil
		})
	}
}

// Listen keeps, on PostgreSQL, a connection listening for the wake-ups
// that instances send (this one's included), and wakes the workers of
// their kind, until ctx ends. When the connection fails it connects again,
// with backoff, then wakes every worker: a job may have been made due
// while nobody listened. On SQLite it returns at once.
func (q *Queue) Listen(ctx context.Context) {
	if !q.postgres {
		return
	}
	for failures := 0; ctx.Err() == nil; {
		err := q.listen(ctx, func() { failures = 0 })
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := backoff.Delay(failures, time.Second, time.Minute)
		q.logger.WarnContext(ctx, "queue: listening for wake-ups failed; the workers poll meanwhile", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// listen listens on one connection until it fails or ctx ends, calling
// listening once it listens.
func (q *Queue) listen(ctx context.Context, listening func()) error {
	conn, err := pgx.Connect(ctx, q.databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	listening()
	q.mu.Lock()
	select {
	case <-q.listening:
	default:
		close(q.listening)
	}
	kinds := make([]string, 0, len(q.wakeups))
	for kind := range q.wakeups {
		kinds = append(kinds, kind)
	}
	q.mu.Unlock()
	for _, kind := range kinds {
		q.wake(kind)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if inSchema, kind, ok := strings.Cut(n.Payload, " "); ok && inSchema == schema {
			q.wake(kind)
		}
	}
}

// lockSQL takes the leader's lock, one per schema, if it is free. It is a
// session lock: it lasts as long as the connection that took it.
const lockSQL = "SELECT pg_try_advisory_lock(hashtextextended('safedelete periodic work ' || current_schema(), 0))"

// Leads reports whether this instance is the one that runs periodic work,
// taking the lead if it is free. On SQLite, which one instance uses, it is
// always true. On PostgreSQL the leader holds an advisory lock on a
// connection of its own; the others try again at each call, so when the
// leader dies (its connection closes, and the lock with it) another takes
// over. The lead is an economy, not a guarantee: for a moment after its
// connection failed, a leader may still run a pass with its successor, so
// periodic work stays safe to run twice.
func (q *Queue) Leads(ctx context.Context) bool {
	q.election.Lock()
	defer q.election.Unlock()
	leads := true
	if q.postgres {
		var err error
		if leads, err = q.elect(ctx); err != nil && ctx.Err() == nil {
			q.logger.WarnContext(ctx, "queue: leader election failed", "error", err)
		}
	}
	if leads != q.leads || !q.elected {
		q.leads, q.elected = leads, true
		q.logger.InfoContext(ctx, "queue: leadership", "leads", leads)
		if q.OnLeadership != nil {
			q.OnLeadership(leads)
		}
	}
	return leads
}

func (q *Queue) elect(ctx context.Context) (bool, error) {
	if q.leader != nil && q.leads {
		if err := q.leader.Ping(ctx); err == nil {
			return true, nil
		}
		q.dropLeaderConn(ctx) // and the lock with it, if the server still had it
	}
	if q.leader == nil {
		conn, err := pgx.Connect(ctx, q.databaseURL)
		if err != nil {
			return false, err
		}
		q.leader = conn
	}
	var took bool
	if err := q.leader.QueryRow(ctx, lockSQL).Scan(&took); err != nil {
		q.dropLeaderConn(ctx)
		return false, err
	}
	return took, nil
}

func (q *Queue) dropLeaderConn(ctx context.Context) {
	_ = q.leader.Close(context.WithoutCancel(ctx))
	q.leader = nil
}

// Close gives up the lead, if this instance has it.
func (q *Queue) Close() {
	q.election.Lock()
	defer q.election.Unlock()
	if q.leader != nil {
		q.dropLeaderConn(context.Background())
	}
}
