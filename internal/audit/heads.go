package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/safedelete/uploads/ent"
)

// head is where an owner's chain ends: its last event's seq and hash.
type head struct {
	seq  int64
	hash Hash
}

// takeHeads returns the chain heads of subjects' owners, each row locked
// until tx ends. The lock is what keeps a chain linear on PostgreSQL,
// where transactions run side by side (READ COMMITTED, several
// instances): a second transaction recording events for the same owner
// waits here, then reads the head the first one left (an upsert's DO
// UPDATE acts on the latest committed row, whatever its snapshot). A row
// lock is a transaction's, so it holds through PgBouncer's transaction
// pooling, which session advisory locks do not. On SQLite, transactions
// take turns anyway (internal/database, writers.go).
//
// The owners are locked in one order (sorted), so that two transactions
// recording events for the same owners cannot deadlock.
func takeHeads(ctx context.Context, tx *ent.Tx, subjects []Subject) (map[string]*head, error) {
	owners := make([]string, 0, 1)
	for _, s := range subjects {
		owners = append(owners, s.OwnerID)
	}
	slices.Sort(owners)
	owners = slices.Compact(owners)
	heads := make(map[string]*head, len(owners))
	for part := range slices.Chunk(owners, chunk) {
		// DO UPDATE, not DO NOTHING: it locks the row that is there, and
		// RETURNING returns it.
		query := "INSERT INTO audit_chains (owner_id) VALUES " + rowsOf(len(part), 1) +
			" ON CONFLICT (owner_id) DO UPDATE SET seq = audit_chains.seq RETURNING owner_id, seq, hash"
		if err := readHeads(ctx, tx, query, anySlice(part), heads); err != nil {
			return nil, err
		}
	}
	if len(heads) != len(owners) {
		return nil, fmt.Errorf("take chain heads: %d of %d owners", len(heads), len(owners))
	}
	return heads, nil
}

func readHeads(ctx context.Context, tx *ent.Tx, query string, args []any, heads map[string]*head) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("take chain heads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var owner string
		var h head
		var hash []byte
		if err := rows.Scan(&owner, &h.seq, &hash); err != nil {
			return fmt.Errorf("take chain heads: %w", err)
		}
		if got, ok := hashOf(hash); ok {
			h.hash = got
		} else if h.seq != 0 {
			return fmt.Errorf("chain head of %s: seq %d without a hash", owner, h.seq)
		}
		heads[owner] = &h
	}
	return rows.Err()
}

// moveHeads writes the heads back, moved on past the events recorded.
func moveHeads(ctx context.Context, tx *ent.Tx, heads map[string]*head) error {
	owners := make([]string, 0, len(heads))
	for owner := range heads {
		owners = append(owners, owner)
	}
	slices.Sort(owners)
	for part := range slices.Chunk(owners, chunk) {
		args := make([]any, 0, 3*len(part))
		for _, owner := range part {
			h := heads[owner]
			args = append(args, owner, h.seq, h.hash[:])
		}
		query := "INSERT INTO audit_chains (owner_id, seq, hash) VALUES " + rowsOf(len(part), 3) +
			" ON CONFLICT (owner_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("move chain heads: %w", err)
		}
	}
	return nil
}

// rowsOf returns n rows of width placeholders, ($1, $2), ($3, $4) …, which
// PostgreSQL and SQLite both read.
func rowsOf(n, width int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range width {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", i*width+j+1)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
