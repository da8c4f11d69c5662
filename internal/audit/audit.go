// Package audit records the changes in an upload's life — created, deleted,
// restored, purged, expired — each as one row written in the transaction
// that makes the change, so that the trail can neither miss a committed
// change nor show one that rolled back. The same transaction queues the
// change for the owner's webhook endpoints. Who made a change travels in the
// request's context (WithActor); a row holds ids, never a key or a secret.
package audit

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/requestlog"
	"github.com/safedelete/uploads/internal/viewer"
	"github.com/safedelete/uploads/internal/webhook"
)

// The kinds of change.
const (
	Created  = auditevent.KindCREATED
	Deleted  = auditevent.KindDELETED
	Restored = auditevent.KindRESTORED
	Purged   = auditevent.KindPURGED
	Expired  = auditevent.KindEXPIRED
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

type actorKey struct{}
type viaRESTKey struct{}

// WithActor returns ctx whose changes are made by a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ViaREST returns ctx whose caller came through the REST shim; a caller's
// changes are otherwise recorded as made through GraphQL.
func ViaREST(ctx context.Context) context.Context {
	return context.WithValue(ctx, viaRESTKey{}, true)
}

// ActorFrom returns who makes ctx's changes: the actor set with WithActor,
// or the request's API key through its interface.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
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

// webhookTypes are the kinds that the owners' webhook endpoints hear of.
var webhookTypes = map[auditevent.Kind]string{
	Created:  webhook.EventUploadCreated,
	Deleted:  webhook.EventUploadDeleted,
	Restored: webhook.EventUploadRestored,
	Purged:   webhook.EventUploadPurged,
}

// Record writes, inside tx, one event of kind for each subject, made by
// ctx's actor, and queues it for the owners' webhook endpoints (the
// outbox): both commit with the change, or neither does.
func Record(ctx context.Context, tx *ent.Tx, kind auditevent.Kind, subjects ...Subject) error {
	if len(subjects) == 0 {
		return nil
	}
	if err := notify(ctx, tx, kind, subjects); err != nil {
		return err
	}
	actor, requestID, now := ActorFrom(ctx), requestlog.FromContext(ctx), time.Now()
	creates := make([]*ent.AuditEventCreate, len(subjects))
	for i, s := range subjects {
		creates[i] = tx.AuditEvent.Create().
			SetUploadID(s.ID).
			SetOwnerID(s.OwnerID).
			SetKind(kind).
			SetActor(actor.Name).
			SetVia(actor.Via).
			SetRequestID(requestID).
			SetCreatedAt(now)
	}
	for part := range slices.Chunk(creates, chunk) {
		if err := tx.AuditEvent.CreateBulk(part...).Exec(ctx); err != nil {
			return fmt.Errorf("record %d %s events: %w", len(subjects), kind, err)
		}
	}
	return nil
}

func notify(ctx context.Context, tx *ent.Tx, kind auditevent.Kind, subjects []Subject) error {
	eventType, ok := webhookTypes[kind]
	if !ok {
		return nil
	}
	now := time.Now()
	events := make([]webhook.Event, len(subjects))
	for i, s := range subjects {
		events[i] = webhook.Event{
			Type: eventType, OwnerID: s.OwnerID, UploadID: s.ID, Time: now,
			Data: webhook.UploadData{ID: s.ID, Filename: s.Filename, Size: s.Size, Status: s.Status},
		}
	}
	return webhook.Enqueue(ctx, tx, events...)
}

// chunk keeps one INSERT's parameters under SQLite's and PostgreSQL's
// limits (7 columns a row).
const chunk = 1000

// Prune deletes the events older than before, a batch at a time, and
// returns how many.
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
		n, err := client.AuditEvent.Delete().Where(auditevent.IDIn(ids...)).Exec(ctx)
		total += n
		if err != nil {
			return total, err
		}
	}
}
