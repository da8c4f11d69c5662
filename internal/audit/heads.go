package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
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

// hints is, for each owner, the chain head this process last wrote: a
// guess, never trusted. RecordAt moves a head on from its guess with one
// statement that changes the row only while the head is still the guess
// (seq and hash), and locks it as takeHeads does (PostgreSQL checks the
// condition again against a row it waited for). A wrong guess (another
// process, or a transaction of this one that rolled back, moved the head)
// changes nothing, and the head is taken as without a guess. So one
// owner's events cost two statements with a right guess, three without a
// guess (issue 22). With a wrong one:
//
//   - on PostgreSQL, where instances share the database and an owner's
//     deletes and purges may each run on another, guesses are often wrong:
//     the statement is an upsert that returns the head, so a wrong guess
//     costs three statements, as no guess does;
//   - on SQLite, where one process writes, guesses are wrong only after a
//     rollback or a write of another process (the CLI): the statement is an
//     UPDATE, and a wrong guess costs four. An upsert returning the head
//     costs SQLite twice an UPDATE's time (BenchmarkRecordOne).
var hints = headHints{heads: map[string]head{}}

// maxHints bounds what hints holds; past it, it starts again.
const maxHints = 1 << 16

// guessesHeld counts the guesses that held, for tests.
var guessesHeld atomic.Int64

type headHints struct {
	mu    sync.Mutex
	heads map[string]head
}

// guess returns the head last remembered for owner.
func (h *headHints) guess(owner string) (head, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.heads[owner]
	return g, ok
}

// remember keeps heads as the owners' guesses.
func (h *headHints) remember(heads map[string]*head) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for owner, hd := range heads {
		if _, ok := h.heads[owner]; !ok && len(h.heads) >= maxHints {
			clear(h.heads)
		}
		h.heads[owner] = *hd
	}
}

// moveFromGuess chains the events of subjects that are one owner's to the
// head hints guesses for it, and moves the head on in tx if the guess
// holds (moved true). On PostgreSQL a wrong guess returns the owner's head,
// taken and locked, for the caller to chain the events to and move on. No
// guess, several owners, or a wrong guess on SQLite return heads nil: the
// caller takes them.
func (c chaining) moveFromGuess(ctx context.Context, tx *ent.Tx, subjects []Subject) (hashes []Hash, rows [][]any, heads map[string]*head, moved bool, err error) {
	owner := subjects[0].OwnerID
	for _, s := range subjects[1:] {
		if s.OwnerID != owner {
			return nil, nil, nil, false, nil
		}
	}
	guess, ok := hints.guess(owner)
	if !ok {
		return nil, nil, nil, false, nil
	}
	next := guess
	moving := map[string]*head{owner: &next}
	hashes, rows = c.chain(moving, subjects)
	if database.Dialect(tx.Client()) != dialect.Postgres {
		// SQLite numbers $N parameters in the order they first appear.
		res, err := tx.ExecContext(ctx, "UPDATE audit_chains SET seq = $1, hash = $2 WHERE owner_id = $3 AND seq = $4 AND hash = $5",
			next.seq, next.hash[:], owner, guess.seq, guess.hash[:])
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("move chain head: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return nil, nil, nil, false, err
		}
		guessesHeld.Add(1)
		return hashes, rows, moving, true, nil
	}
	// An owner without a row gets one at seq 0, as takeHeads makes it: a
	// guess never is seq 0.
	const query = "INSERT INTO audit_chains (owner_id) VALUES ($1) ON CONFLICT (owner_id) DO UPDATE SET" +
		" seq = CASE WHEN audit_chains.seq = $2 AND audit_chains.hash = $3 THEN $4 ELSE audit_chains.seq END," +
		" hash = CASE WHEN audit_chains.seq = $2 AND audit_chains.hash = $3 THEN $5 ELSE audit_chains.hash END" +
		" RETURNING owner_id, seq, hash"
	heads = make(map[string]*head, 1)
	if err := readHeads(ctx, tx, query, []any{owner, guess.seq, guess.hash[:], next.seq, next.hash[:]}, heads); err != nil {
		return nil, nil, nil, false, err
	}
	now, ok := heads[owner]
	if !ok {
		return nil, nil, nil, false, fmt.Errorf("take chain head of %s: no row", owner)
	}
	if *now != next { // the guess was wrong: now is the head
		return nil, nil, heads, false, nil
	}
	guessesHeld.Add(1)
	return hashes, rows, heads, true, nil
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
