package webhook_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestOutcomesRecordedTogether: outcomes committed in one transaction are
// each recorded as alone, and only while their own claim holds: a delivery
// claimed since by another sender (its lease ran out) keeps that claim,
// while the others of the batch, delivered or failed, are recorded.
func TestOutcomesRecordedTogether(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner, _, _ := w.endpoint(newReceiver(t).URL)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()),
		event(webhook.EventUploadDeleted, owner, ids.NewUpload()),
		event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	ctx := context.Background()
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true})
	claimed, err := sender.Claim(ctx)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("Claim = %d, %v; want 3", len(claimed), err)
	}
	delivered, stolen, failed := claimed[0], claimed[1], claimed[2]
	// Another sender claimed the second since: one attempt more.
	w.client.WebhookDelivery.UpdateOneID(stolen.ID).AddAttempts(1).ExecX(ctx)
	next := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	err = sender.RecordTogether(
		webhook.Outcome{Delivery: delivered, Delivered: true, Code: http.StatusNoContent},
		webhook.Outcome{Delivery: stolen, Delivered: true, Code: http.StatusNoContent},
		webhook.Outcome{Delivery: failed, Code: http.StatusInternalServerError, Msg: "HTTP 500", Next: next},
	)
	if err != nil {
		t.Fatal(err)
	}
	if d := w.delivery(delivered.ID); d.Status != webhookdelivery.StatusDELIVERED || d.LastStatusCode != http.StatusNoContent || d.DeliveredAt == nil {
		t.Errorf("delivered: %s, code %d, delivered at %v; want DELIVERED, 204, a time", d.Status, d.LastStatusCode, d.DeliveredAt)
	}
	if d := w.delivery(stolen.ID); d.Status != webhookdelivery.StatusPENDING || d.LastStatusCode != 0 || d.Attempts != stolen.Attempts+1 {
		t.Errorf("claimed by another sender since: %s, code %d, %d attempts; want the other's claim untouched (PENDING, no code, %d attempts)",
			d.Status, d.LastStatusCode, d.Attempts, stolen.Attempts+1)
	}
	if d := w.delivery(failed.ID); d.Status != webhookdelivery.StatusPENDING || d.LastError != "HTTP 500" || !d.NextAttemptAt.Equal(next) {
		t.Errorf("failed: %s, %q, due %v; want PENDING, \"HTTP 500\", due %v", d.Status, d.LastError, d.NextAttemptAt, next)
	}
}
