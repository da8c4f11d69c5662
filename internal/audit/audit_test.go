package audit_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/viewer"
)

func open(t *testing.T) *ent.Client {
	t.Helper()
	url := testenv.PostgresSchema(t)
	if url == "" {
		url = database.SQLiteURL(filepath.Join(t.TempDir(), "audit.db"))
	}
	client, err := database.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestActorFrom(t *testing.T) {
	t.Parallel()
	base := context.Background()
	asKey := viewer.NewContext(base, viewer.Viewer{UserID: "usr_1", APIKeyID: "key_1"})
	for _, c := range []struct {
		name   string
		ctx    context.Context
		want   audit.Actor
		system bool
	}{
		{"a key through GraphQL (the default)", asKey, audit.Actor{Name: "key_1", Via: auditevent.ViaGRAPHQL}, false},
		{"a key through REST", audit.ViaREST(asKey), audit.Actor{Name: "key_1", Via: auditevent.ViaREST}, false},
		{"nobody", base, audit.Actor{Name: "unknown", Via: auditevent.ViaGRAPHQL}, false},
		{"the cli, whatever the key", audit.WithActor(asKey, audit.CLI), audit.CLI, true},
		{"the janitor", audit.WithActor(base, audit.Janitor), audit.Janitor, true},
		{"the purger", audit.WithActor(base, audit.Purger), audit.Purger, true},
	} {
		got := audit.ActorFrom(c.ctx)
		if got != c.want || got.System() != c.system {
			t.Errorf("%s: %+v (system %v), want %+v (system %v)", c.name, got, got.System(), c.want, c.system)
		}
	}
}

// TestRecord: one row per subject, in the caller's transaction (gone with
// its rollback), each queued for webhooks except EXPIRED, which has no
// webhook event.
func TestRecord(t *testing.T) {
	t.Parallel()
	client := open(t)
	ctx := audit.ViaREST(viewer.NewContext(context.Background(), viewer.Viewer{UserID: "usr_1", APIKeyID: "key_1"}))
	endpoint := client.WebhookEndpoint.Create().SetOwnerID("usr_1").SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx)
	a := audit.Subject{ID: "upl_a", OwnerID: "usr_1", Filename: "a.txt", Size: 1, Status: "COMPLETED"}
	b := audit.Subject{ID: "upl_b", OwnerID: "usr_1", Filename: "b.txt", Size: 2, Status: "FAILED"}

	rolledBack := errors.New("roll back")
	err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		if err := audit.Record(ctx, tx, audit.Deleted, a); err != nil {
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
		if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return audit.Record(ctx, tx, kind, a, b) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return audit.Record(ctx, tx, audit.Deleted) }); err != nil {
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
	deliveries := client.WebhookDelivery.Query().AllX(ctx)
	types := map[string]int{}
	for _, d := range deliveries {
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

// TestPrune deletes exactly the events older than the cutoff, past one
// batch.
func TestPrune(t *testing.T) {
	t.Parallel()
	client := open(t)
	ctx := context.Background()
	now := time.Now()
	var creates []*ent.AuditEventCreate
	for i := range 2500 {
		at := now.Add(-48 * time.Hour)
		if i%5 == 0 {
			at = now.Add(-time.Hour)
		}
		creates = append(creates, client.AuditEvent.Create().SetUploadID("upl_x").SetOwnerID("usr_1").
			SetKind(audit.Created).SetActor("key_1").SetVia(auditevent.ViaGRAPHQL).SetCreatedAt(at))
	}
	for len(creates) > 0 {
		n := min(len(creates), 500)
		client.AuditEvent.CreateBulk(creates[:n]...).SaveX(ctx)
		creates = creates[n:]
	}
	pruned, err := audit.Prune(ctx, client, now.Add(-24*time.Hour))
	if err != nil || pruned != 2000 {
		t.Fatalf("pruned %d (%v), want 2000", pruned, err)
	}
	if left := client.AuditEvent.Query().CountX(ctx); left != 500 {
		t.Errorf("%d left, want the 500 young ones", left)
	}
}

// TestRecordMany: a batch's worth and more in one call, past both
// engines' limits on one statement's parameters.
func TestRecordMany(t *testing.T) {
	t.Parallel()
	client := open(t)
	ctx := audit.WithActor(context.Background(), audit.Janitor)
	subjects := make([]audit.Subject, 10_000)
	for i := range subjects {
		subjects[i] = audit.Subject{ID: "upl_many", OwnerID: "usr_1", Status: "FAILED"}
	}
	if err := database.WithTx(ctx, client, func(tx *ent.Tx) error { return audit.Record(ctx, tx, audit.Expired, subjects...) }); err != nil {
		t.Fatal(err)
	}
	if n := client.AuditEvent.Query().CountX(ctx); n != len(subjects) {
		t.Errorf("%d events, want %d", n, len(subjects))
	}
}
