package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/viewer"
)

func TestCaller(t *testing.T) {
	t.Parallel()
	base := context.Background()
	asKey := viewer.NewContext(base, viewer.Viewer{UserID: "usr_1", APIKeyID: "key_1"})
	for _, c := range []struct {
		name string
		ctx  context.Context
		want audit.Actor
	}{
		{"a key through GraphQL (the default)", asKey, audit.Actor{Name: "key_1", Via: auditevent.ViaGRAPHQL}},
		{"a key through REST", audit.ViaREST(asKey), audit.Actor{Name: "key_1", Via: auditevent.ViaREST}},
		{"nobody", base, audit.Actor{Name: "unknown", Via: auditevent.ViaGRAPHQL}},
	} {
		if got := audit.Caller(c.ctx); got != c.want || got.System() {
			t.Errorf("%s: %+v (system %v), want %+v, not system", c.name, got, got.System(), c.want)
		}
	}
	for _, a := range []audit.Actor{audit.CLI, audit.Janitor, audit.Purger} {
		if !a.System() {
			t.Errorf("%+v is not the system", a)
		}
	}
}

// TestPrune deletes exactly the events older than the cutoff, past one
// batch.
func TestPrune(t *testing.T) {
	t.Parallel()
	client := testenv.OpenDatabase(t)
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
	client := testenv.OpenDatabase(t)
	ctx := context.Background()
	subjects := make([]audit.Subject, 10_000)
	for i := range subjects {
		subjects[i] = audit.Subject{ID: "upl_many", OwnerID: "usr_1", Status: "FAILED"}
	}
	if err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		_, err := audit.Record(ctx, tx, audit.Janitor, audit.Expired, subjects...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := client.AuditEvent.Query().CountX(ctx); n != len(subjects) {
		t.Errorf("%d events, want %d", n, len(subjects))
	}
}
