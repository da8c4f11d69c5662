package events

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
)

// reading is one read of the trail: the events after the horizon and, on
// PostgreSQL, the transactions writing to the trail just before its
// snapshot (writers) and those that may have been in flight at it
// (inFlight): the snapshot's in-progress list, which leaves out every
// transaction whose xid is at or past its xmax (xmax is the last
// completed xid plus one, not the next to be assigned), so also the
// trail's writers just after it.
type reading struct {
	events   []*ent.AuditEvent
	inFlight map[uint32]bool
	writers  map[uint32]bool
}

// fence holds back the events up to upTo while a transaction that may have
// been in flight when they were read (xids) may still commit a lower id:
// one that writes to audit_events. A transaction holds the
// RowExclusiveLock on the table from before its INSERT takes an id until
// it ends, so one seen not holding it after the reading has taken no id
// yet, and any it takes will be higher than every id read; one that ended
// before a later snapshot is in that snapshot.
type fence struct {
	upTo  int
	xids  map[uint32]bool
	since time.Time
}

// writersSQL lists the transactions holding a write lock on this schema's
// audit_events (a 32-bit xid, as snapshots' xip list them modulo 2^32).
const writersSQL = `SELECT t.transactionid::text FROM pg_locks r
JOIN pg_locks t ON t.virtualtransaction = r.virtualtransaction AND t.locktype = 'transactionid'
WHERE r.locktype = 'relation' AND r.granted AND r.mode = 'RowExclusiveLock'
AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())
AND r.relation = 'audit_events'::regclass`

// read reads up to pageSize events after the event id after. On
// PostgreSQL it first lists the trail's writers, then reads the events and
// the transactions in flight in one snapshot.
func (f *Feed) read(ctx context.Context, after int) (reading, error) {
	query := func(q *ent.AuditEventQuery) ([]*ent.AuditEvent, error) {
		return q.Where(auditevent.IDGT(after)).Order(ent.Asc(auditevent.FieldID)).Limit(pageSize).All(ctx)
	}
	if !f.postgres {
		// SQLite has one writer at a time: ids are taken in commit order.
		events, err := query(f.client.AuditEvent.Query())
		return reading{events: events}, err
	}
	var r reading
	var err error
	if r.writers, err = f.writers(ctx); err != nil {
		return reading{}, err
	}
	err = f.inSnapshot(ctx, func(tx *ent.Tx, inFlight map[uint32]bool) (err error) {
		r.inFlight = inFlight
		r.events, err = query(tx.AuditEvent.Query())
		return err
	})
	return r, err
}

// writers returns the transactions writing to the trail now.
func (f *Feed) writers(ctx context.Context) (map[uint32]bool, error) {
	rows, err := f.client.QueryContext(ctx, writersSQL)
	if err != nil {
		return nil, err
	}
	return scanXids(rows, 1)
}

// inSnapshot runs read in a read-only transaction of one snapshot, handing
// it the transactions in flight at that snapshot (PostgreSQL).
func (f *Feed) inSnapshot(ctx context.Context, read func(tx *ent.Tx, inFlight map[uint32]bool) error) error {
	tx, err := f.client.BeginTx(ctx, &stdsql.TxOptions{Isolation: stdsql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	// The first statement takes the transaction's snapshot.
	rows, err := tx.QueryContext(ctx, "SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x")
	if err != nil {
		return err
	}
	inFlight, err := scanXids(rows, 1<<32)
	if err != nil {
		return err
	}
	if err := read(tx, inFlight); err != nil {
		return err
	}
	// Those the in-progress list leaves out (xids past its xmax) that
	// write to the trail: pg_locks is read live, after the snapshot.
	writers, err := f.writers(ctx)
	if err != nil {
		return err
	}
	maps.Copy(inFlight, writers)
	return tx.Commit()
}

// trailEnd returns the id up to which the trail is final: every event up
// to it has committed or never will. The first subscription starts the
// feed there. On PostgreSQL it is the last id read once the transactions
// writing to the trail when it was read have ended (at most FenceTimeout).
func (f *Feed) trailEnd(ctx context.Context) (int, error) {
	last := func(q *ent.AuditEventQuery) (int, error) {
		id, err := q.Order(ent.Desc(auditevent.FieldID)).FirstID(ctx)
		if ent.IsNotFound(err) {
			return 0, nil
		}
		return id, err
	}
	if !f.postgres {
		return last(f.client.AuditEvent.Query())
	}
	var end int
	wait := &fence{}
	err := f.inSnapshot(ctx, func(tx *ent.Tx, inFlight map[uint32]bool) (err error) {
		wait.xids = inFlight
		end, err = last(tx.AuditEvent.Query())
		return err
	})
	for deadline := time.Now().Add(f.opts.FenceTimeout); err == nil && len(wait.xids) > 0 && time.Now().Before(deadline); {
		var writers map[uint32]bool
		if writers, err = f.writers(ctx); err == nil && !wait.blockedBy(writers) {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return end, err
}

// scanXids reads one column of transaction ids, each modulo mod (1: as
// they are), and closes rows.
func scanXids(rows *stdsql.Rows, mod uint64) (map[uint32]bool, error) {
	defer rows.Close()
	xids := map[uint32]bool{}
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return nil, err
		}
		xid, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("transaction id %q: %w", text, err)
		}
		if mod > 1 {
			xid %= mod
		}
		xids[uint32(xid)] = true
	}
	return xids, rows.Err()
}

// settle decides how far the events read may be delivered (upTo: every
// event up to it is final) and what fence holds back the rest. On SQLite
// every event read is final. On PostgreSQL events always wait behind a
// fence until a later reading finds none of the transactions that may have
// been in flight at theirs writing to the trail (that reading, taken
// after, holds what they committed): no reading can tell on its own that
// nothing was in flight. A fence older than timeout is passed anyway
// (forced): a transaction left open must not stop every subscriber.
func settle(r reading, pending *fence, postgres bool, now time.Time, timeout time.Duration) (upTo int, next *fence, forced bool) {
	if len(r.events) == 0 && pending == nil {
		return 0, nil, false
	}
	last := 0
	if n := len(r.events); n > 0 {
		last = r.events[n-1].ID
	}
	if !postgres {
		return last, nil, false
	}
	if pending != nil {
		blocked := pending.blockedBy(r.writers)
		if blocked && now.Sub(pending.since) < timeout {
			return 0, pending, false // nothing is final yet
		}
		upTo, forced = pending.upTo, blocked
	}
	if last > upTo {
		return upTo, &fence{upTo: last, xids: r.inFlight, since: now}, forced
	}
	return upTo, nil, forced
}

// blockedBy reports whether a transaction the fence waits for is among
// writers.
func (f *fence) blockedBy(writers map[uint32]bool) bool {
	if f == nil {
		return false
	}
	for xid := range f.xids {
		if writers[xid] {
			return true
		}
	}
	return false
}

// retry is how soon to read again while a fence waits: the transactions
// in flight usually end within milliseconds, and a long one is not polled
// for more than ten times a second.
func (f *fence) retry(now time.Time) time.Duration {
	return min(max(now.Sub(f.since), 2*time.Millisecond), 100*time.Millisecond)
}
