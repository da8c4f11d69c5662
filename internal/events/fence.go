package events

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
)

// reading is one read of the trail: the events after the horizon and, on
// PostgreSQL, the snapshot they were read in.
type reading struct {
	events []*ent.AuditEvent
	// xmin is the oldest transaction still in flight at the snapshot;
	// xmax the first not yet started. xmin == xmax: none in flight.
	xmin, xmax uint64
}

// fence holds back the events up to upTo until every transaction in flight
// when they were read (those before xmax) has ended: one of them may hold
// a lower id and commit later.
type fence struct {
	upTo  int
	xmax  uint64
	since time.Time
}

// read reads up to pageSize events after the event id after. On
// PostgreSQL it reads them and the snapshot's bounds in one snapshot.
func (f *Feed) read(ctx context.Context, after int) (reading, error) {
	query := func(q *ent.AuditEventQuery) ([]*ent.AuditEvent, error) {
		return q.Where(auditevent.IDGT(after)).Order(ent.Asc(auditevent.FieldID)).Limit(pageSize).All(ctx)
	}
	if !f.postgres {
		// SQLite has one writer at a time: ids are taken in commit order.
		events, err := query(f.client.AuditEvent.Query())
		return reading{events: events}, err
	}
	tx, err := f.client.BeginTx(ctx, &stdsql.TxOptions{Isolation: stdsql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return reading{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	var r reading
	// The first statement takes the transaction's snapshot; the events
	// are read in the same one.
	rows, err := tx.QueryContext(ctx, "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() AS s")
	if err != nil {
		return reading{}, err
	}
	var xmin, xmax string
	if rows.Next() {
		err = rows.Scan(&xmin, &xmax)
	}
	if closeErr := rows.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return reading{}, err
	}
	if r.xmin, err = strconv.ParseUint(xmin, 10, 64); err != nil {
		return reading{}, fmt.Errorf("snapshot xmin %q: %w", xmin, err)
	}
	if r.xmax, err = strconv.ParseUint(xmax, 10, 64); err != nil {
		return reading{}, fmt.Errorf("snapshot xmax %q: %w", xmax, err)
	}
	if r.events, err = query(tx.AuditEvent.Query()); err != nil {
		return reading{}, err
	}
	return r, tx.Commit()
}

// settle decides how far the events read may be delivered (upTo: every
// event up to it is final) and what fence holds back the rest. On SQLite
// every event read is final. On PostgreSQL, events read while no
// transaction was in flight are final; otherwise they wait behind a fence
// for a later reading whose xmin shows those transactions ended (and
// which, read after they ended, holds what they committed). A fence older
// than timeout is passed anyway (forced): a transaction left open must not
// stop every subscriber.
func settle(r reading, pending *fence, postgres bool, now time.Time, timeout time.Duration) (upTo int, next *fence, forced bool) {
	if len(r.events) == 0 && pending == nil {
		return 0, nil, false
	}
	last := 0
	if n := len(r.events); n > 0 {
		last = r.events[n-1].ID
	}
	if !postgres || r.xmin == r.xmax {
		return max(last, fenceEnd(pending)), nil, false
	}
	if pending != nil {
		inFlight := r.xmin < pending.xmax
		if inFlight && now.Sub(pending.since) < timeout {
			return 0, pending, false // nothing is final yet
		}
		upTo, forced = pending.upTo, inFlight
	}
	if last > upTo {
		return upTo, &fence{upTo: last, xmax: r.xmax, since: now}, forced
	}
	return upTo, nil, forced
}

// retry is how soon to read again while a fence waits: the transactions
// in flight usually end within milliseconds, and a long one is not polled
// for more than ten times a second.
func (f *fence) retry(now time.Time) time.Duration {
	return min(max(now.Sub(f.since), 2*time.Millisecond), 100*time.Millisecond)
}

func fenceEnd(f *fence) int {
	if f == nil {
		return 0
	}
	return f.upTo
}
