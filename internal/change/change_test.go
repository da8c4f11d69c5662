package change_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

var key = audit.Actor{Name: "key_1", Via: auditevent.ViaREST}

// TestRecord: one audit row per subject, in the caller's transaction (gone
// with its rollback), each queued for the owner's endpoint except EXPIRED,
// which has no webhook event.
func TestRecord(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	endpoint := client.WebhookEndpoint.Create().SetOwnerID("usr_1").SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx)
	a := audit.Subject{ID: "upl_a", OwnerID: "usr_1", Filename: "a.txt", Size: 1, Status: "COMPLETED"}
	b := audit.Subject{ID: "upl_b", OwnerID: "usr_1", Filename: "b.txt", Size: 2, Status: "FAILED"}

	rolledBack := errors.New("roll back")
	err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		if err := change.Record(ctx, tx, key, audit.Deleted, change.MayHave, a); err != nil {
			return err
		}
		return rolledBack
	})
	if !errors.Is(err, rolledBack) {
		t.Fatal(err)
	}
	if n := client.AuditEvent.Query().CountX(ctx) + client.WebhookDelivery.Query().CountX(ctx); n != 0 {
		t.Fatalf("%d rows outlived the rollback", n)
	}

	for _, kind := range []auditevent.Kind{audit.Created, audit.Deleted, audit.Restored, audit.Purged, audit.Expired} {
		if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return change.Record(ctx, tx, key, kind, change.MayHave, a, b) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return change.Record(ctx, tx, key, audit.Deleted, change.MayHave) }); err != nil {
		t.Fatalf("recording nothing: %v", err)
	}
	events := client.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).AllX(ctx)
	if len(events) != 10 {
		t.Fatalf("%d events, want 10", len(events))
	}
	for _, e := range events {
		if e.OwnerID != "usr_1" || e.Actor != "key_1" || e.Via != auditevent.ViaREST || time.Since(e.CreatedAt) > time.Minute {
			t.Errorf("event %+v", e)
		}
	}
	types := map[string]int{}
	for _, d := range client.WebhookDelivery.Query().AllX(ctx) {
		types[d.EventType]++
		if d.EndpointID != endpoint.ID {
			t.Errorf("delivery to %s", d.EndpointID)
		}
	}
	want := map[string]int{"upload.created": 2, "upload.deleted": 2, "upload.restored": 2, "upload.purged": 2}
	if len(types) != len(want) {
		t.Errorf("deliveries by type %v, want %v", types, want)
	}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("deliveries by type %v, want %v", types, want)
		}
	}
}

// TestNoneLive: a change whose transaction saw no live endpoint of the
// owner is audited, and the outbox is left alone: not even read.
func TestNoneLive(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	client.WebhookEndpoint.Create().SetOwnerID("usr_1").SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx) // (had the delete seen it, it would have said MayHave)
	s := audit.Subject{ID: "upl_a", OwnerID: "usr_1", Filename: "a.txt", Size: 1, Status: "COMPLETED"}
	if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return change.Record(ctx, tx, key, audit.Deleted, change.NoneLive, s) }); err != nil {
		t.Fatal(err)
	}
	if n := client.AuditEvent.Query().CountX(ctx); n != 1 {
		t.Errorf("%d audit events, want 1", n)
	}
	if n := client.WebhookDelivery.Query().CountX(ctx); n != 0 {
		t.Errorf("%d deliveries queued for an owner the transaction saw without endpoints", n)
	}
}
