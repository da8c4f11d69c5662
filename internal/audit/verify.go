package audit

import (
	"bytes"
	"context"
	"fmt"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
)

// Break is where a user's chain stops verifying: the first event changed,
// removed or reordered.
type Break struct {
	UserID  string `json:"user_id"`
	EventID int    `json:"event_id"`
	Problem string `json:"problem"` // changed, removed or reordered
	Detail  string `json:"detail"`
}

// Report is what Verify checked and found.
type Report struct {
	Users        int     `json:"users"`
	Events       int     `json:"events"`
	LegacyEvents int     `json:"legacy_events"` // written before the chain, unchecked
	Breaks       []Break `json:"breaks"`
}

// verifyPage is how many events Verify reads a statement: it holds no
// more, however long the trail.
const verifyPage = 1000

// Verify walks every user's chain (only userID's, if not empty) in the
// order of the owner_id+id index, a page at a time, and reports the first
// break of each. An event's hash must be that of its fields and its
// prev_hash; its prev_hash the hash of the event before it; its seq one
// more. The first kept event anchors the chain (its prev_hash, covered by
// its hash) where AUDIT_RETENTION pruned the ones before it; the owner's
// chain head (audit_chains) must be the last event's, so that events
// removed from the end show too. Events written before the chain (no hash)
// are a prefix it counts and does not check.
func Verify(ctx context.Context, client *ent.Client, userID string) (Report, error) {
	var r Report
	var w *walk
	afterOwner, afterID := "", 0
	for {
		query := `SELECT id, owner_id, upload_id, kind, actor, via, request_id, created_at, seq, prev_hash, hash
			FROM audit_events WHERE (owner_id, id) > ($1, $2) ORDER BY owner_id, id LIMIT $3`
		args := []any{afterOwner, afterID, verifyPage}
		if userID != "" {
			query = `SELECT id, owner_id, upload_id, kind, actor, via, request_id, created_at, seq, prev_hash, hash
				FROM audit_events WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3`
			args = []any{userID, afterID, verifyPage}
		}
		rows, err := client.QueryContext(ctx, query, args...)
		if err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		n := 0
		for rows.Next() {
			var row eventRow
			var seq *int64
			if err := rows.Scan(&row.id, &row.OwnerID, &row.UploadID, &row.Kind, &row.Actor, &row.Via, &row.RequestID,
				&row.CreatedAt, &seq, &row.prevHash, &row.hash); err != nil {
				rows.Close()
				return r, fmt.Errorf("verify: %w", err)
			}
			if seq != nil {
				row.Seq = *seq
			}
			n++
			afterOwner, afterID = row.OwnerID, row.id
			if w == nil || w.owner != row.OwnerID {
				if err := w.end(ctx, client, &r); err != nil {
					rows.Close()
					return r, err
				}
				r.Users++
				w = &walk{owner: row.OwnerID}
			}
			r.Events++
			w.next(row, &r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		if n < verifyPage {
			break
		}
	}
	return r, w.end(ctx, client, &r)
}

// eventRow is one row of audit_events as verify reads it.
type eventRow struct {
	Event
	id             int
	prevHash, hash []byte
}

// walk is one user's chain as far as verify has read it.
type walk struct {
	owner  string
	first  *eventRow // the first chained event: seq 1, or the first kept after pruning
	last   *eventRow // the last chained event
	broken *Break
}

func (w *walk) fail(r *Report, id int, problem, detail string, args ...any) {
	b := Break{UserID: w.owner, EventID: id, Problem: problem, Detail: fmt.Sprintf(detail, args...)}
	r.Breaks = append(r.Breaks, b)
	w.broken = &r.Breaks[len(r.Breaks)-1]
}

func (w *walk) next(row eventRow, r *Report) {
	if w.broken != nil {
		// One break a user; an event missing here and found later was moved.
		if w.broken.Problem == "removed" && w.last != nil && row.Seq > 0 && row.Seq < w.last.Seq {
			w.broken.Problem = "reordered"
			w.broken.Detail += fmt.Sprintf("; seq %d comes later, at event %d", row.Seq, row.id)
		}
		return
	}
	if len(row.hash) == 0 && row.Seq == 0 && len(row.prevHash) == 0 {
		if w.last != nil {
			w.fail(r, row.id, "changed", "it has no hash, yet comes after chained event %d", w.last.id)
			return
		}
		r.LegacyEvents++
		return
	}
	prev, okPrev := hashOf(row.prevHash)
	stored, okHash := hashOf(row.hash)
	row.Prev = prev
	if !okPrev || !okHash || row.Event.Sum() != stored {
		w.fail(r, row.id, "changed", "its hash is not that of its fields (seq %d)", row.Seq)
		return
	}
	switch {
	case w.last == nil:
		if row.Seq != 1 && prev == (Hash{}) || row.Seq == 1 && prev != (Hash{}) {
			w.fail(r, row.id, "changed", "seq %d does not match its prev_hash", row.Seq)
			return
		}
		// seq > 1: the events before it were pruned, which end checks;
		// its prev_hash anchors it.
		w.first = &row
	case row.Seq > w.last.Seq+1:
		w.fail(r, row.id, "removed", "seq %d–%d missing between events %d and %d", w.last.Seq+1, row.Seq-1, w.last.id, row.id)
		w.last = &row
		return
	case row.Seq <= w.last.Seq:
		w.fail(r, row.id, "reordered", "seq %d comes after seq %d (event %d)", row.Seq, w.last.Seq, w.last.id)
		return
	case !bytes.Equal(row.prevHash, w.last.hash):
		w.fail(r, row.id, "changed", "its prev_hash is not the hash of event %d before it", w.last.id)
		return
	}
	w.last = &row
}

// end checks the user's last event against the chain's head.
func (w *walk) end(ctx context.Context, client *ent.Client, r *Report) error {
	if w == nil || w.first == nil {
		return nil
	}
	var seq, prunedSeq int64
	var hash []byte
	err := queryRow(ctx, client, `SELECT seq, hash, pruned_seq FROM audit_chains WHERE owner_id = $1`, []any{w.owner}, &seq, &hash, &prunedSeq)
	if err == nil && w.first.Seq-1 > prunedSeq {
		// Missing from the start, yet never pruned: the chain's first break.
		if w.broken != nil {
			r.Breaks = r.Breaks[:len(r.Breaks)-1]
		}
		w.fail(r, w.first.id, "removed", "seq %d–%d missing before event %d, the first (pruned up to seq %d)", prunedSeq+1, w.first.Seq-1, w.first.id, prunedSeq)
		return nil
	}
	if w.broken != nil {
		return nil
	}
	switch {
	case err != nil:
		// A missing head (sql.ErrNoRows) is a break too: Record writes one with the first event.
		w.fail(r, w.last.id, "removed", "the chain's head is missing after event %d: %v", w.last.id, err)
	case seq > w.last.Seq:
		// Written since this page was read? Then it is there now.
		var newer int
		if err := queryRow(ctx, client, `SELECT count(*) FROM audit_events WHERE owner_id = $1 AND id > $2`, []any{w.owner, w.last.id}, &newer); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if newer == 0 {
			w.fail(r, w.last.id, "removed", "seq %d–%d missing after event %d, the last", w.last.Seq+1, seq, w.last.id)
		}
	case seq < w.last.Seq || !bytes.Equal(hash, w.last.hash):
		w.fail(r, w.last.id, "changed", "the chain's head (seq %d) is not event %d", seq, w.last.id)
	}
	return nil
}

// queryRow scans the one row query returns into dest (sql.ErrNoRows: none).
func queryRow(ctx context.Context, client *ent.Client, query string, args []any, dest ...any) error {
	return database.QueryRow(ctx, client, query, args, dest...)
}
