package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestValidateURL: registration takes absolute https URLs with a host and
// no credentials, and says what is wrong with any other.
func TestValidateURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url       string
		allowHTTP bool
		want      string // the error's message; "" for none
	}{
		{"https://hooks.example.com/uploads", false, ""},
		{"https://hooks.example.com:8443/a?b=c", false, ""},
		{"HTTPS://hooks.example.com/", false, ""},
		{"https://203.0.113.7/hook", false, ""}, // where it leads is checked at connect time
		{"http://localhost:8080/hook", true, ""},
		{"http://hooks.example.com/", false, "The webhook URL must use https"},
		{"", false, "The webhook URL must not be blank"},
		{"   ", false, "The webhook URL must not be blank"},
		{"hooks.example.com/uploads", false, "The webhook URL must be an absolute https URL"},
		{"/uploads", true, "The webhook URL must be an absolute http or https URL"},
		{"ftp://hooks.example.com/", false, "The webhook URL must be an absolute https URL"},
		{"file:///etc/passwd", false, "The webhook URL must be an absolute https URL"},
		{"javascript:alert(1)", false, "The webhook URL must be an absolute https URL"},
		{"https:hooks.example.com", false, "The webhook URL must name a host"},
		{"https:///path", false, "The webhook URL must name a host"},
		{"https://:443/path", false, "The webhook URL must name a host"},
		{"https://user:pass@hooks.example.com/", false, "The webhook URL must not contain a user name or password"},
		{"https://token@hooks.example.com/", false, "The webhook URL must not contain a user name or password"},
		{"https://hooks.example.com/\x00", false, "The webhook URL is not a valid URL"},
		{"https://hooks example.com/", false, "The webhook URL is not a valid URL"},
		{" https://hooks.example.com/", false, "The webhook URL is not a valid URL"},
		{"https://hooks.example.com/" + strings.Repeat("a", 2048-26), false, ""},
		{"https://hooks.example.com/" + strings.Repeat("a", 2048-25), false, "The webhook URL must be at most 2048 characters"},
	} {
		err := webhook.ValidateURL(c.url, c.allowHTTP)
		var public *webhook.PublicError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ValidateURL(%q) = %v, want nil", c.url, err)
		case c.want != "" && (!errors.As(err, &public) || !errors.Is(err, webhook.ErrInvalidInput) || err.Error() != c.want):
			t.Errorf("ValidateURL(%q) = %v, want the invalid input %q", c.url, err, c.want)
		}
	}
}

// TestCreateEndpoint: an endpoint gets a whsec_ secret of 32 random bytes,
// stored only sealed, and the event types it asked for; unknown types and
// too many endpoints are refused.
func TestCreateEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner := ids.NewUser()
	ep, secret, err := webhook.CreateEndpoint(ctx, w.client, w.sealer, owner, "https://hooks.example.com/a",
		[]string{webhook.EventUploadPurged, webhook.EventUploadDeleted, webhook.EventUploadPurged}, false)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: want whsec_ and the base64 of 32 bytes", secret)
	}
	stored := w.client.WebhookEndpoint.GetX(ctx, ep.ID)
	if strings.Contains(string(stored.Secret), string(raw)) || strings.Contains(string(stored.Secret), secret) {
		t.Fatal("the secret is stored in the clear")
	}
	if opened, err := w.sealer.Open(ep.ID, stored.Secret); err != nil || string(opened) != string(raw) {
		t.Fatalf("the stored secret does not open to the one shown: %v", err)
	}
	if strings.Join(stored.Events, ",") != "upload.deleted,upload.purged" || stored.OwnerID != owner || stored.DisabledAt != nil {
		t.Fatalf("stored %+v", stored)
	}
	if strings.Contains(ep.String(), string(stored.Secret)) {
		t.Fatal("the endpoint's String shows its sealed secret")
	}

	_, _, err = webhook.CreateEndpoint(ctx, w.client, w.sealer, owner, "https://hooks.example.com/b", []string{"upload.exploded"}, false)
	if !errors.Is(err, webhook.ErrInvalidInput) || !strings.Contains(err.Error(), `"upload.exploded"`) {
		t.Fatalf("unknown event type: %v", err)
	}
	for range webhook.MaxEndpointsPerOwner - 1 {
		if _, _, err := webhook.CreateEndpoint(ctx, w.client, w.sealer, owner, "https://hooks.example.com/c", nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := webhook.CreateEndpoint(ctx, w.client, w.sealer, owner, "https://hooks.example.com/d", nil, false); !errors.Is(err, webhook.ErrTooManyEndpoints) {
		t.Fatalf("endpoint %d: %v", webhook.MaxEndpointsPerOwner+1, err)
	}
}

// TestEndpointsAreTheOwnersOnly: every management function sees only the
// caller's endpoints and deliveries; someone else's are not found, exactly
// like ids that do not exist.
func TestEndpointsAreTheOwnersOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner, ep, _ := w.endpoint("https://hooks.example.com/mine")
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	message := w.deliveries()[0].MessageID
	intruder := ids.NewUser()

	for _, endpointID := range []string{ep.ID, ids.NewWebhookEndpoint(), "whe_x", ""} {
		if _, _, err := webhook.RotateSecret(ctx, w.client, w.sealer, intruder, endpointID); err != webhook.ErrEndpointNotFound {
			t.Errorf("RotateSecret(%q): %v", endpointID, err)
		}
		if _, err := webhook.EnableEndpoint(ctx, w.client, intruder, endpointID); err != webhook.ErrEndpointNotFound {
			t.Errorf("EnableEndpoint(%q): %v", endpointID, err)
		}
		if _, err := webhook.Deliveries(ctx, w.client, intruder, endpointID, 10); err != webhook.ErrEndpointNotFound {
			t.Errorf("Deliveries(%q): %v", endpointID, err)
		}
		if err := webhook.DeleteEndpoint(ctx, w.client, intruder, endpointID); err != webhook.ErrEndpointNotFound {
			t.Errorf("DeleteEndpoint(%q): %v", endpointID, err)
		}
	}
	for _, messageID := range []string{message, ids.NewMessage(), "msg_x"} {
		if _, err := webhook.Redeliver(ctx, w.client, intruder, messageID); err != webhook.ErrDeliveryNotFound {
			t.Errorf("Redeliver(%q): %v", messageID, err)
		}
	}
	if eps, err := webhook.Endpoints(ctx, w.client, intruder); err != nil || len(eps) != 0 {
		t.Errorf("Endpoints of another user: %d, %v", len(eps), err)
	}
	if !errors.Is(webhook.ErrEndpointNotFound, webhook.ErrNotFound) || !errors.Is(webhook.ErrDeliveryNotFound, webhook.ErrNotFound) {
		t.Error("the not-found errors are not of kind ErrNotFound")
	}
	// Nothing the intruder did changed the owner's endpoint or delivery.
	if stored := w.client.WebhookEndpoint.GetX(ctx, ep.ID); string(stored.Secret) != string(ep.Secret) || len(w.deliveries()) != 1 {
		t.Fatal("the intruder changed the owner's endpoint")
	}
	if eps, err := webhook.Endpoints(ctx, w.client, owner); err != nil || len(eps) != 1 || eps[0].ID != ep.ID {
		t.Fatalf("Endpoints of the owner: %v, %v", eps, err)
	}
}

// TestDeleteEndpoint: deleting an endpoint deletes its deliveries, pending
// or not, and nobody else's.
func TestDeleteEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner, ep, _ := w.endpoint("https://hooks.example.com/a")
	other, _, _ := w.endpoint("https://hooks.example.com/b")
	w.enqueue(event(webhook.EventUploadCreated, owner, ids.NewUpload()), event(webhook.EventUploadDeleted, owner, ids.NewUpload()),
		event(webhook.EventUploadDeleted, other, ids.NewUpload()))
	if err := webhook.DeleteEndpoint(ctx, w.client, owner, ep.ID); err != nil {
		t.Fatal(err)
	}
	if left := w.deliveries(); len(left) != 1 || left[0].EndpointID == ep.ID {
		t.Fatalf("%d deliveries left, want only the other owner's", len(left))
	}
	if exists := w.client.WebhookEndpoint.Query().Where(webhookendpoint.OwnerID(other)).ExistX(ctx); !exists {
		t.Fatal("the other owner's endpoint went too")
	}
	if err := webhook.DeleteEndpoint(ctx, w.client, owner, ep.ID); err != webhook.ErrEndpointNotFound {
		t.Fatalf("deleting again: %v", err)
	}
}

// TestDeliveriesNewestFirst: an endpoint's deliveries are listed newest
// first, first at a time, 1 to 100 (both allowed).
func TestDeliveriesNewestFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner, ep, _ := w.endpoint("https://hooks.example.com/a")
	for _, typ := range []string{webhook.EventUploadCreated, webhook.EventUploadDeleted, webhook.EventUploadPurged} {
		w.enqueue(event(typ, owner, ids.NewUpload()))
	}
	got, err := webhook.Deliveries(ctx, w.client, owner, ep.ID, 2)
	if err != nil || len(got) != 2 || got[0].EventType != webhook.EventUploadPurged || got[1].EventType != webhook.EventUploadDeleted {
		t.Fatalf("Deliveries(first 2) = %v, %v; want purged, deleted", got, err)
	}
	for first, want := range map[int]int{1: 1, webhook.MaxDeliveriesPage: 3} { // the bounds are allowed
		if got, err := webhook.Deliveries(ctx, w.client, owner, ep.ID, first); err != nil || len(got) != want {
			t.Errorf("Deliveries(first %d) = %d deliveries, %v; want %d", first, len(got), err, want)
		}
	}
	for _, first := range []int{0, -1, webhook.MaxDeliveriesPage + 1} {
		if _, err := webhook.Deliveries(ctx, w.client, owner, ep.ID, first); !errors.Is(err, webhook.ErrInvalidInput) {
			t.Errorf("first %d: %v", first, err)
		}
	}
}

// TestRedeliver: a delivered (or failed) delivery is sent again with the
// same webhook-id, due at once; a pending one is left as it is.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	pending, err := webhook.Redeliver(ctx, w.client, owner, w.deliveries()[0].MessageID)
	if err != nil || pending.Status != webhookdelivery.StatusPENDING || pending.Attempts != 0 {
		t.Fatalf("Redeliver of a pending delivery: %+v, %v", pending, err)
	}
	sender := w.sender(local)
	if _, delivered, err := sender.RunOnce(ctx); delivered != 1 || err != nil {
		t.Fatalf("delivered %d, %v", delivered, err)
	}

	again, err := webhook.Redeliver(ctx, w.client, owner, pending.MessageID)
	if err != nil || again.Status != webhookdelivery.StatusPENDING || again.DeliveredAt != nil || time.Until(again.NextAttemptAt) > 0 {
		t.Fatalf("Redeliver: %+v, %v; want PENDING and due", again, err)
	}
	if _, delivered, err := sender.RunOnce(ctx); delivered != 1 || err != nil {
		t.Fatalf("redelivered %d, %v", delivered, err)
	}
	got := rcv.got()
	if len(got) != 2 || got[0].ID != got[1].ID || got[1].ID != pending.MessageID || !got[1].Verified {
		t.Fatalf("receiver got %d deliveries; want the same webhook-id twice, verified", len(got))
	}
	if d := w.delivery(again.ID); d.Status != webhookdelivery.StatusDELIVERED || d.Attempts != 2 {
		t.Fatalf("after redelivery: %s, %d attempts", d.Status, d.Attempts)
	}
}
