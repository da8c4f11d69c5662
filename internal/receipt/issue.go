package receipt

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletionreceipt"
)

// Removal is an upload gone for good, as its receipt tells it.
type Removal struct {
	UploadID  string
	OwnerID   string
	Bucket    string // empty: the upload never stored an object
	ObjectKey string
	// Queued is when its purge was written (its delete), for a receipt
	// whose DELETED event is no longer kept.
	Queued time.Time
	// JobID is the deletion job that deleted it, if one did: the receipt
	// counts toward the job's (Settle).
	JobID string
	// RequestedBy and RequestedVia, if RequestedBy is set, are who asked
	// for the delete and through what, carried from the delete (its
	// DELETED event's actor and via, the event's time being Queued):
	// then Issue reads no event for the receipt.
	RequestedBy  string
	RequestedVia string
}

// Issuer signs and stores deletion receipts.
type Issuer struct {
	keys *Keys
	// versions is what VersionsRemoved says of a purged object.
	versions string
}

// NewIssuer returns an Issuer signing with keys; markerOnly says the
// purger leaves older versions (S3_DELETE_MARKER_ONLY), which its receipts
// then say.
func NewIssuer(keys *Keys, markerOnly bool) *Issuer {
	versions := VersionsAll
	if markerOnly {
		versions = VersionsCurrent
	}
	return &Issuer{keys: keys, versions: versions}
}

// Keys returns the issuer's keys.
func (i *Issuer) Keys() *Keys { return i.keys }

// Issue signs, inside tx, the receipts of removals and stores them; it
// returns each by upload id. auditHashes, if not nil, are the hashes of the
// audit events that recorded the removals, in the same order. Run it in the
// transaction that records them gone: a receipt commits with that record,
// or neither does. An upload that already has one keeps it.
func (i *Issuer) Issue(ctx context.Context, tx *ent.Tx, removals []Removal, auditHashes []string) (map[string]string, error) {
	if len(removals) == 0 {
		return nil, nil
	}
	// A key file rotated meanwhile signs from this batch on; one that
	// cannot be read leaves the keys read before in use.
	_ = i.keys.Refresh()
	asked, err := deleteRequests(ctx, tx, removals)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	claims := make([]Claims, len(removals))
	for n, r := range removals {
		c := Claims{
			IssuedAt: now.Unix(), UploadID: r.UploadID, OwnerID: r.OwnerID,
			Bucket: r.Bucket, ObjectKey: r.ObjectKey, VersionsRemoved: i.versions,
			DeleteRequestedAt: r.Queued.UTC(), DeleteRequestedBy: "unknown", ObjectGoneAt: now,
		}
		if r.Bucket == "" {
			c.VersionsRemoved = VersionsNone
		}
		if r.RequestedBy != "" {
			c.DeleteRequestedBy, c.DeleteRequestedVia = r.RequestedBy, r.RequestedVia
		} else if ev, ok := asked[r.UploadID]; ok {
			c.DeleteRequestedAt, c.DeleteRequestedBy, c.DeleteRequestedVia = ev.CreatedAt.UTC(), ev.Actor, string(ev.Via)
		}
		if n < len(auditHashes) {
			c.AuditEventHash = auditHashes[n]
		}
		claims[n] = c
	}
	signed, err := i.signAll(claims)
	if err != nil {
		return nil, err
	}
	issuedForJobs, err := store(ctx, tx, removals, signed, now)
	if err != nil {
		return nil, err
	}
	for jobID, n := range issuedForJobs {
		if err := i.Settle(ctx, tx, jobID, -n); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(removals))
	for n, r := range removals {
		out[r.UploadID] = signed[n]
	}
	return out, nil
}

// deleteRequests returns the latest DELETED audit event of each removed
// upload that does not carry its request (RequestedBy): who asked for the
// delete, and when. One read a batch, on the trail's (owner_id, upload_id)
// index; none when every removal carries it (every delete's since they
// do).
func deleteRequests(ctx context.Context, tx *ent.Tx, removals []Removal) (map[string]*ent.AuditEvent, error) {
	var owners, uploads []string
	for _, r := range removals {
		if r.RequestedBy != "" {
			continue
		}
		if !slices.Contains(owners, r.OwnerID) { // nearly always one
			owners = append(owners, r.OwnerID)
		}
		uploads = append(uploads, r.UploadID)
	}
	if len(uploads) == 0 {
		return nil, nil
	}
	// No ORDER BY: ordered by id, the planner may walk the (owner_id, id)
	// index through every event of the owner (an erasure's millions) to
	// save a sort, instead of seeking each upload on (owner_id, upload_id).
	events, err := tx.AuditEvent.Query().
		Where(auditevent.OwnerIDIn(owners...), auditevent.UploadIDIn(uploads...), auditevent.KindEQ(auditevent.KindDELETED)).
		Select(auditevent.FieldID, auditevent.FieldUploadID, auditevent.FieldActor, auditevent.FieldVia, auditevent.FieldCreatedAt).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the deletes of %d receipts: %w", len(removals), err)
	}
	asked := make(map[string]*ent.AuditEvent, len(events))
	for _, ev := range events {
		// The latest wins: an upload restored and deleted again.
		if seen, ok := asked[ev.UploadID]; !ok || ev.ID > seen.ID {
			asked[ev.UploadID] = ev
		}
	}
	return asked, nil
}

// signAll signs the claims on every core: a batch of a thousand purges is
// a thousand signatures, made while the batch's transaction is open.
func (i *Issuer) signAll(claims []Claims) ([]string, error) {
	signed := make([]string, len(claims))
	workers := min(runtime.GOMAXPROCS(0), (len(claims)+63)/64)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := w; n < len(claims); n += workers {
				payload, err := json.Marshal(claims[n])
				if err == nil {
					signed[n], err = i.keys.sign(payload)
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return signed, nil
}

// insertChunk keeps one INSERT's parameters under SQLite's and
// PostgreSQL's limits (5 columns a row).
const insertChunk = 1000

// store inserts the receipts, keeping any an upload already has (a purge
// finished twice), and returns how many it inserted for each deletion job
// (none when no removal is a job's, the common case: no rows come back).
func store(ctx context.Context, tx *ent.Tx, removals []Removal, signed []string, now time.Time) (map[string]int, error) {
	var forJobs map[string]int
	for start := 0; start < len(removals); start += insertChunk {
		end := min(start+insertChunk, len(removals))
		// PostgreSQL's placeholders and quoting are also SQLite's, and so
		// is ON CONFLICT ... DO NOTHING (RETURNING only what it inserted).
		insert := sql.Dialect(dialect.Postgres).Insert(deletionreceipt.Table).Columns(
			deletionreceipt.FieldUploadID, deletionreceipt.FieldOwnerID, deletionreceipt.FieldJws,
			deletionreceipt.FieldDeletionJobID, deletionreceipt.FieldCreatedAt)
		ofJobs := false
		for n := start; n < end; n++ {
			insert.Values(removals[n].UploadID, removals[n].OwnerID, signed[n], removals[n].JobID, now)
			ofJobs = ofJobs || removals[n].JobID != ""
		}
		insert.OnConflict(sql.ConflictColumns(deletionreceipt.FieldUploadID), sql.DoNothing())
		query, args := insert.Query()
		if !ofJobs {
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return nil, fmt.Errorf("store %d deletion receipts: %w", len(removals), err)
			}
			continue
		}
		if forJobs == nil {
			forJobs = map[string]int{}
		}
		if err := countJobs(ctx, tx, query+" RETURNING "+deletionreceipt.FieldDeletionJobID, args, forJobs); err != nil {
			return nil, fmt.Errorf("store %d deletion receipts: %w", len(removals), err)
		}
	}
	delete(forJobs, "")
	return forJobs, nil
}

// countJobs runs query, which returns a deletion job's id a row, and
// counts the rows of each job into counts.
func countJobs(ctx context.Context, tx *ent.Tx, query string, args []any, counts map[string]int) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var jobID string
		if err := rows.Scan(&jobID); err != nil {
			return err
		}
		counts[jobID]++
	}
	return rows.Err()
}

// Prune deletes the receipts older than before, a batch at a time, and
// returns how many: they are kept as long as the audit trail.
func Prune(ctx context.Context, client *ent.Client, before time.Time) (int, error) {
	total := 0
	for {
		ids, err := client.DeletionReceipt.Query().
			Where(deletionreceipt.CreatedAtLT(before)).
			Limit(insertChunk).
			IDs(ctx)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		n, err := client.DeletionReceipt.Delete().Where(deletionreceipt.IDIn(ids...)).Exec(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// Of returns the stored receipt of an upload of ownerID; ent's NotFound
// error when there is none (or it is someone else's).
func Of(ctx context.Context, client *ent.Client, ownerID, uploadID string) (*ent.DeletionReceipt, error) {
	return client.DeletionReceipt.Query().
		Where(deletionreceipt.UploadID(uploadID), deletionreceipt.OwnerID(ownerID)).
		Only(ctx)
}
