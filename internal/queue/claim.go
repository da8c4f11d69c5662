package queue

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
)

// The columns every job table has.
const (
	ColumnID       = "id"              // an integer key
	ColumnDue      = "next_attempt_at" // when the job is due; while claimed, when the lease ends
	ColumnAttempts = "attempts"        // attempts begun, the claims included
)

// Batch is one claim: which rows of a job table to take, for how long,
// and what to return of them.
type Batch struct {
	Table string
	// Where are what makes a row due besides its next_attempt_at having
	// come (Ent predicates of the table convert to them).
	Where []func(*sql.Selector)
	// IDs, when given, restrict the claim to these rows; those no longer
	// due (claimed by another worker since they were read) are left.
	IDs   []int
	Limit int // the oldest due first, at most this many (len(IDs) by default)
	// Now is when the rows must be due by; LeaseEnd is their
	// next_attempt_at while claimed, after which a claim whose worker died
	// lapses and the row is due again.
	Now, LeaseEnd time.Time
	Returning     []string // the columns returned of each claimed row
}

// Claim takes the due rows of a batch for one lease, adding an attempt to
// each, and returns them (their columns after the claim, in no particular
// order), scanned into T as Ent's sql.ScanSlice does (by the fields' sql
// or json tags: an Ent entity pointer, or a struct of the columns).
//
// It is one statement: the UPDATE of the rows a sub-select finds due. On
// PostgreSQL the sub-select locks them FOR UPDATE SKIP LOCKED, so that
// workers claiming at once take different rows without waiting for each
// other, and a row another worker claimed meanwhile is read again (no
// longer due) rather than taken twice. On SQLite, which has one writer at a
// time, it runs in a transaction of client: in this process's queue of
// writers (internal/database), not in SQLite's busy handler.
func Claim[T any](ctx context.Context, client *ent.Client, b Batch) ([]T, error) {
	name := database.Dialect(client)
	if name == "" {
		return nil, errors.New("queue: a client not opened by package database")
	}
	query, args, err := claimStatement(name, b)
	if err != nil || query == "" {
		return nil, err
	}
	var claimed []T
	if name == dialect.Postgres {
		claimed, err = scanClaimed[T](ctx, client, query, args)
	} else {
		err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
			claimed, err = scanClaimed[T](ctx, tx, query, args)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("claim from %s: %w", b.Table, err)
	}
	return claimed, nil
}

// ClaimTx is Claim's statement run in tx: the claim commits with whatever
// else tx writes, or not at all. A worker that records the outcomes of
// finished jobs claims the next ones in the same commit.
func ClaimTx[T any](ctx context.Context, tx *ent.Tx, b Batch) ([]T, error) {
	query, args, err := claimStatement(database.Dialect(tx.Client()), b)
	if err != nil || query == "" {
		return nil, err
	}
	claimed, err := scanClaimed[T](ctx, tx, query, args)
	if err != nil {
		return nil, fmt.Errorf("claim from %s: %w", b.Table, err)
	}
	return claimed, nil
}

// claimStatement builds a batch's claim in SQL dialect name; an empty
// query when the batch can take nothing.
func claimStatement(name string, b Batch) (string, []any, error) {
	limit := b.Limit
	if limit == 0 {
		limit = len(b.IDs)
	}
	if limit <= 0 {
		return "", nil, nil
	}
	build := sql.Dialect(name)
	due := build.Select(ColumnID).From(sql.Table(b.Table))
	due.Where(sql.LTE(due.C(ColumnDue), b.Now))
	if len(b.IDs) > 0 {
		due.Where(sql.InInts(due.C(ColumnID), b.IDs...))
	}
	for _, p := range b.Where {
		p(due)
	}
	due.OrderBy(due.C(ColumnDue), due.C(ColumnID)).Limit(limit)
	if name == dialect.Postgres {
		due.ForUpdate(sql.WithLockAction(sql.SkipLocked))
	}
	claim := build.Update(b.Table).
		Set(ColumnDue, b.LeaseEnd).
		Add(ColumnAttempts, 1).
		Where(sql.In(ColumnID, due)).
		Returning(b.Returning...)
	query, args := claim.Query()
	if err := claim.Err(); err != nil {
		return "", nil, fmt.Errorf("claim from %s: %w", b.Table, err)
	}
	return query, args, nil
}

// scanClaimed runs a claim's statement on q and scans the rows it returns.
func scanClaimed[T any](ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
}, query string, args []any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var claimed []T
	if err := sql.ScanSlice(rows, &claimed); err != nil {
		return nil, err
	}
	return claimed, nil
}
