// Package audit records the changes in an upload's life — created, deleted,
// restored, purged, expired — each as one row written in the transaction
// that makes the change, so that the trail can neither miss a committed
// change nor show one that rolled back (internal/change writes it with the
// webhook outbox). Who made a change is given explicitly: a caller's
// credential (Caller), or the service itself (CLI, Janitor, Purger). A row
// holds ids, never a key or a secret.
package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/viewer"
)

// The kinds of change.
const (
	Created  = auditevent.KindCREATED
	Deleted  = auditevent.KindDELETED
	Restored = auditevent.KindRESTORED
	Purged   = auditevent.KindPURGED
	Expired  = auditevent.KindEXPIRED
	// HoldPlaced and HoldReleased are legal holds on an upload (internal/holds).
	HoldPlaced   = auditevent.KindHOLD_PLACED
	HoldReleased = auditevent.KindHOLD_RELEASED
)

// Actor is who makes a change and through what.
type Actor struct {
	Name string // an API key's id, or "cli", "janitor", "purger"
	Via  auditevent.Via
}

// The actors that are not a caller's key.
var (
	CLI     = Actor{Name: "cli", Via: auditevent.ViaCLI}
	Janitor = Actor{Name: "janitor", Via: auditevent.ViaJANITOR}
	Purger  = Actor{Name: "purger", Via: auditevent.ViaPURGER}
)

// System reports whether the actor is the service itself or its operator
// rather than a user: such deletes skip the trash.
func (a Actor) System() bool {
	return a.Via == auditevent.ViaCLI || a.Via == auditevent.ViaJANITOR || a.Via == auditevent.ViaPURGER
}

type viaRESTKey struct{}

// ViaREST returns ctx whose caller came through the REST shim; a caller's
// changes are otherwise recorded as made through GraphQL. Which interface
// a request came through is the request's own data, as its viewer is.
func ViaREST(ctx context.Context) context.Context {
	return context.WithValue(ctx, viaRESTKey{}, true)
}

// Caller returns the actor of ctx's caller: its credential (an API key's
// id, or an access token's identity) and the interface it came through.
func Caller(ctx context.Context) Actor {
	a := Actor{Via: auditevent.ViaGRAPHQL}
	if ctx.Value(viaRESTKey{}) != nil {
		a.Via = auditevent.ViaREST
	}
	if v, err := viewer.FromContext(ctx); err == nil {
		a.Name = v.Credential()
	}
	if a.Name == "" {
		a.Name = "unknown"
	}
	return a
}

// Subject is the upload a change is about, as it was when changed.
type Subject struct {
	ID       string
	OwnerID  string
	Filename string
	Size     int64
	Status   string
}

// Of returns the subject of an upload.
func Of(u *ent.Upload) Subject {
	return Subject{ID: u.ID, OwnerID: u.OwnerID, Filename: u.Filename, Size: u.Size, Status: u.Status.String()}
}

// OfDeleted returns the subject of an upload in the trash.
func OfDeleted(d *ent.DeletedUpload) Subject {
	return Subject{ID: d.ID, OwnerID: d.OwnerID, Filename: d.Filename, Size: d.Size, Status: d.Status.String()}
}

// Record writes, inside tx, one event of kind for each subject, made by
// actor: it commits with the change, or neither does. Each event is
// chained to its owner's event before it (chain.go), and Record returns
// their hashes in the order of subjects. Every delete runs it, so it is
// three plain statements for a delete's events: take the owners' chain
// heads (heads.go), one INSERT (from Ent's SQL builder, with no RETURNING
// of the ids nobody reads) per chunk of events, and move the heads on.
func Record(ctx context.Context, tx *ent.Tx, actor Actor, kind auditevent.Kind, subjects ...Subject) ([]Hash, error) {
	return RecordAt(ctx, tx, actor, kind, time.Now(), subjects...)
}

// RecordAt is Record with the events' time given: a delete tells it to
// the purges it writes too, so that their receipts name it without reading
// the events back.
//
// The events of one owner whose chain head this process remembers
// (hints) take two statements: the head moved on from the remembered one,
// which locks it as takeHeads does, and the INSERT; a wrong guess takes
// three, as no guess does.
func RecordAt(ctx context.Context, tx *ent.Tx, actor Actor, kind auditevent.Kind, at time.Time, subjects ...Subject) ([]Hash, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	fail := func(err error) ([]Hash, error) {
		return nil, fmt.Errorf("record %d %s events: %w", len(subjects), kind, err)
	}
	c := chaining{
		kind: kind, actor: actor, requestID: requestlog.FromContext(ctx),
		now: at.Truncate(time.Microsecond), // to the microsecond, as PostgreSQL stores it: the hash covers it
	}
	hashes, rows, heads, moved, err := c.moveFromGuess(ctx, tx, subjects)
	if err != nil {
		return fail(err)
	}
	if heads == nil {
		if heads, err = takeHeads(ctx, tx, subjects); err != nil {
			return fail(err)
		}
	}
	if !moved {
		hashes, rows = c.chain(heads, subjects)
	}
	for part := range slices.Chunk(rows, chunk) {
		if _, err := tx.ExecContext(ctx, insertEvents(len(part)), slices.Concat(part...)...); err != nil {
			return fail(err)
		}
	}
	if !moved {
		if err := moveHeads(ctx, tx, heads); err != nil {
			return fail(err)
		}
	}
	hints.remember(heads)
	return hashes, nil
}

// chaining is what RecordAt's events share.
type chaining struct {
	kind      auditevent.Kind
	actor     Actor
	requestID string
	now       time.Time
}

// chain makes the subjects' events, each chained to its owner's head in
// heads, which it moves on; it returns their hashes and their rows'
// values, in eventColumns' order.
func (c chaining) chain(heads map[string]*head, subjects []Subject) ([]Hash, [][]any) {
	hashes := make([]Hash, len(subjects))
	rows := make([][]any, len(subjects))
	for i, s := range subjects {
		head := heads[s.OwnerID]
		e := Event{
			Prev: head.hash, Seq: head.seq + 1, OwnerID: s.OwnerID, UploadID: s.ID, Kind: c.kind,
			Actor: c.actor.Name, Via: c.actor.Via, RequestID: c.requestID, CreatedAt: c.now,
		}
		sum := e.Sum()
		hashes[i] = sum
		head.seq, head.hash = e.Seq, sum
		rows[i] = []any{s.ID, s.OwnerID, c.kind, c.actor.Name, c.actor.Via, c.requestID, c.now, e.Seq, e.Prev[:], sum[:]}
	}
	return hashes, rows
}

// eventColumns are the columns Record writes, in the order of its values.
var eventColumns = []string{
	auditevent.FieldUploadID, auditevent.FieldOwnerID, auditevent.FieldKind, auditevent.FieldActor,
	auditevent.FieldVia, auditevent.FieldRequestID, auditevent.FieldCreatedAt,
	auditevent.FieldSeq, auditevent.FieldPrevHash, auditevent.FieldHash,
}

// insertEvents is the INSERT of n events, from Ent's SQL builder; that of
// one event, every single delete's, is built once (building it on every
// delete showed in the benchmark's profiles, issue 22).
func insertEvents(n int) string {
	if n == 1 {
		return insertOneEvent()
	}
	return buildInsertEvents(n)
}

var insertOneEvent = sync.OnceValue(func() string { return buildInsertEvents(1) })

func buildInsertEvents(n int) string {
	// PostgreSQL's placeholders ($1) and quoting are also SQLite's.
	insert := sql.Dialect(dialect.Postgres).Insert(auditevent.Table).Columns(eventColumns...)
	row := make([]any, len(eventColumns))
	for i := range row {
		row[i] = "" // not nil, which the builder writes as NULL, not as a placeholder
	}
	for range n {
		insert.Values(row...)
	}
	query, _ := insert.Query()
	return query
}

// chunk keeps one INSERT's parameters under SQLite's and PostgreSQL's
// limits (10 columns a row).
const chunk = 1000

// Prune deletes the events older than before, a batch at a time, and
// returns how many. Each owner's chain head records the highest seq
// pruned, so that verify tells the first events pruned from the first
// events removed: the chain verifies from the first kept event on.
func Prune(ctx context.Context, client *ent.Client, before time.Time) (int, error) {
	total := 0
	for {
		ids, err := client.AuditEvent.Query().
			Where(auditevent.CreatedAtLT(before)).
			Limit(chunk).
			IDs(ctx)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		n, err := pruneBatch(ctx, client, ids)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// pruneBatch deletes the events ids and raises their owners' pruned_seq,
// in one transaction.
func pruneBatch(ctx context.Context, client *ent.Client, ids []int) (n int, err error) {
	err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
		var pruned []struct {
			OwnerID string `json:"owner_id"`
			Max     int64  `json:"max"`
		}
		if err := tx.AuditEvent.Query().Where(auditevent.IDIn(ids...), auditevent.SeqGT(0)).
			GroupBy(auditevent.FieldOwnerID).Aggregate(ent.Max(auditevent.FieldSeq)).Scan(ctx, &pruned); err != nil {
			return err
		}
		for _, p := range pruned {
			if _, err := tx.ExecContext(ctx, `UPDATE audit_chains SET pruned_seq = $1 WHERE owner_id = $2 AND pruned_seq < $1`, p.Max, p.OwnerID); err != nil {
				return err
			}
		}
		n, err = tx.AuditEvent.Delete().Where(auditevent.IDIn(ids...)).Exec(ctx)
		return err
	})
	return n, err
}
