package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/webhook"
)

// pending writes a delivery as Enqueue would have, created at the given
// time, with the given attempts already made, due now.
func (w *world) pending(ep *ent.WebhookEndpoint, createdAt time.Time, attempts int) *ent.WebhookDelivery {
	w.t.Helper()
	return w.client.WebhookDelivery.Create().
		SetMessageID(ids.NewMessage()).SetEndpointID(ep.ID).SetUploadID(ids.NewUpload()).
		SetEventType(webhook.EventUploadDeleted).SetPayload(`{"type":"upload.deleted"}`).
		SetAttempts(attempts).SetCreatedAt(createdAt).SetNextAttemptAt(time.Now()).
		SaveX(context.Background())
}

// failingReceiver answers every delivery with 500 and a word of why.
func failingReceiver(t *testing.T) *receiver {
	rcv := newReceiver(t)
	rcv.setAnswer(func(arrival) int { return http.StatusInternalServerError })
	return rcv
}

// TestBackoff: a failed attempt is retried after a jittered backoff that
// starts near a second and doubles up to MaxBackoff, and never past the end
// of the retry window, when the last attempt comes.
func TestBackoff(t *testing.T) {
	// Serial: it reads each wait back within 100 ms of the attempt that set it.
	w := newWorld(t)
	rcv := failingReceiver(t)
	_, ep, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, MaxBackoff: 10 * time.Second})
	for _, c := range []struct {
		attempts int           // before this one
		age      time.Duration // of the delivery
		min, max time.Duration // the wait after it fails
	}{
		{0, 0, 500 * time.Millisecond, time.Second},
		{1, 0, time.Second, 2 * time.Second},
		{3, 0, 4 * time.Second, 8 * time.Second},
		{20, 0, 5 * time.Second, 10 * time.Second},                                         // MaxBackoff
		{20, webhook.DefaultRetryWindow - 2*time.Second, 0, 2 * time.Second},               // the window's end
		{20, webhook.DefaultRetryWindow - 200*time.Millisecond, 0, 200 * time.Millisecond}, // the window's end
	} {
		d := w.pending(ep, time.Now().Add(-c.age), c.attempts)
		if attempted, _, err := sender.RunOnce(ctx); attempted != 1 || err != nil {
			t.Fatalf("attempted %d, %v", attempted, err)
		}
		d = w.delivery(d.ID)
		wait := time.Until(d.NextAttemptAt)
		if d.Status != webhookdelivery.StatusPENDING || d.Attempts != c.attempts+1 || d.LastStatusCode != 500 || d.LastError != "HTTP 500" {
			t.Errorf("after attempt %d: %s, %d attempts, %d %q", c.attempts+1, d.Status, d.Attempts, d.LastStatusCode, d.LastError)
		}
		if wait < c.min-100*time.Millisecond || wait > c.max {
			t.Errorf("after attempt %d of a delivery %v old: retried in %v, want within [%v, %v]", c.attempts+1, c.age, wait, c.min, c.max)
		}
		if end := d.CreatedAt.Add(webhook.DefaultRetryWindow); d.NextAttemptAt.After(end) {
			t.Errorf("retried at %v, after the window's end %v", d.NextAttemptAt, end)
		}
		w.client.WebhookDelivery.DeleteOne(d).ExecX(ctx) // out of the next case's way
	}
}

// TestRetryWindow: a delivery still failing once the retry window has
// passed is FAILED and its endpoint disabled, with the reason; a disabled
// endpoint gets no new deliveries, its pending ones are not sent, nor
// redelivered, until it is enabled again.
func TestRetryWindow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := failingReceiver(t)
	owner, ep, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	sender := w.sender(local)
	old := w.pending(ep, time.Now().Add(-webhook.DefaultRetryWindow-time.Minute), 40)

	if attempted, delivered, err := sender.RunOnce(ctx); attempted != 1 || delivered != 0 || err != nil {
		t.Fatalf("RunOnce = %d, %d, %v", attempted, delivered, err)
	}
	if d := w.delivery(old.ID); d.Status != webhookdelivery.StatusFAILED || d.LastError != "HTTP 500" || d.LastStatusCode != 500 {
		t.Fatalf("delivery past the window: %s, %d %q; want FAILED", d.Status, d.LastStatusCode, d.LastError)
	}
	ep = w.client.WebhookEndpoint.GetX(ctx, ep.ID)
	if ep.DisabledAt == nil || ep.DisabledReason != "deliveries failed for 72h; last error: HTTP 500" {
		t.Fatalf("endpoint disabled at %v, reason %q", ep.DisabledAt, ep.DisabledReason)
	}

	waiting := w.pending(ep, time.Now(), 0)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	if n := len(w.deliveries()); n != 2 {
		t.Fatalf("%d deliveries; a disabled endpoint got a new one", n)
	}
	if attempted, _, err := sender.RunOnce(ctx); attempted != 0 || err != nil {
		t.Fatalf("attempted %d (%v) to a disabled endpoint", attempted, err)
	}
	if _, err := webhook.Redeliver(ctx, w.client, owner, old.MessageID); !errors.Is(err, webhook.ErrEndpointDisabled) {
		t.Fatalf("Redeliver to a disabled endpoint: %v", err)
	}

	rcv.setAnswer(nil)
	if _, err := webhook.EnableEndpoint(ctx, w.client, owner, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, delivered, err := sender.RunOnce(ctx); delivered != 1 || err != nil {
		t.Fatalf("delivered %d (%v) once enabled", delivered, err)
	}
	if d := w.delivery(waiting.ID); d.Status != webhookdelivery.StatusDELIVERED {
		t.Fatalf("the waiting delivery is %s once enabled", d.Status)
	}
}

// TestRetryWindowOneMessage: when another delivery reached the endpoint
// since the failing one was created, the endpoint works: only that message
// fails, and the endpoint stays enabled.
func TestRetryWindowOneMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := failingReceiver(t)
	_, ep, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	refused := w.pending(ep, time.Now().Add(-webhook.DefaultRetryWindow-time.Minute), 40)
	w.client.WebhookDelivery.UpdateOne(w.pending(ep, time.Now().Add(-time.Hour), 1)).
		SetStatus(webhookdelivery.StatusDELIVERED).SetDeliveredAt(time.Now().Add(-time.Hour)).ExecX(ctx)

	if attempted, _, err := w.sender(local).RunOnce(ctx); attempted != 1 || err != nil {
		t.Fatalf("attempted %d, %v", attempted, err)
	}
	if d := w.delivery(refused.ID); d.Status != webhookdelivery.StatusFAILED {
		t.Fatalf("delivery past the window: %s, want FAILED", d.Status)
	}
	if ep = w.client.WebhookEndpoint.GetX(ctx, ep.ID); ep.DisabledAt != nil {
		t.Fatalf("endpoint disabled (%q) although it accepted a delivery since", ep.DisabledReason)
	}
}

// TestOrderPerUpload: while an upload's earlier delivery to an endpoint is
// pending (backing off), its later ones wait; other uploads' do not.
func TestOrderPerUpload(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	stuck, free := ids.NewUpload(), ids.NewUpload()
	rcv.setAnswer(func(a arrival) int {
		if a.UploadID == stuck {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	w.enqueue(event(webhook.EventUploadDeleted, owner, stuck), event(webhook.EventUploadDeleted, owner, free))
	w.enqueue(event(webhook.EventUploadPurged, owner, stuck), event(webhook.EventUploadPurged, owner, free))
	sender := w.sender(local)
	for range 3 {
		// The stuck upload's deleted is made due at once after each
		// failure: its purged must still wait.
		if _, _, err := sender.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		w.client.WebhookDelivery.Update().
			Where(webhookdelivery.UploadID(stuck), webhookdelivery.EventType(webhook.EventUploadDeleted)).
			SetNextAttemptAt(time.Now()).ExecX(ctx)
	}
	var sent []string
	for _, a := range rcv.got() {
		sent = append(sent, a.Type+" "+map[bool]string{true: "stuck", false: "free"}[a.UploadID == stuck])
	}
	want := "upload.deleted stuck,upload.deleted free,upload.purged free,upload.deleted stuck,upload.deleted stuck"
	if got := strings.Join(sent, ","); !sameSet(got, want) {
		t.Fatalf("sent %s, want (in any order within a pass) %s", got, want)
	}
	for _, a := range rcv.got() {
		if a.UploadID == stuck && a.Type == webhook.EventUploadPurged {
			t.Fatal("the stuck upload's purged was sent while its deleted was pending")
		}
	}
}

// TestOrderWithinOneEnqueue: events of one upload queued together (as a
// change with several events queues them) are sent in their order too:
// while the first is in flight, the second is not claimed, though due.
func TestOrderWithinOneEnqueue(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner, _, _ := w.endpoint("https://hooks.example.com/together")
	upload, other := ids.NewUpload(), ids.NewUpload()
	w.enqueue(event(webhook.EventUploadDeleted, owner, upload), event(webhook.EventUploadPurged, owner, upload),
		event(webhook.EventUploadDeleted, owner, other))
	claimed, err := w.sender(local).Claim(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range claimed {
		got = append(got, d.EventType+" "+map[bool]string{true: "upload", false: "other"}[d.UploadID == upload])
	}
	slices.Sort(got)
	if want := []string{"upload.deleted other", "upload.deleted upload"}; !slices.Equal(got, want) {
		t.Fatalf("claimed %q, want %q: upload.purged waits for its upload.deleted", got, want)
	}
}

// TestRedeliveredHoldsLater: a delivery sent again (Redeliver) holds back
// the later deliveries of its upload to its endpoint still pending, as it
// would have had it been pending when they were queued: upload.deleted,
// given up on, is redelivered while upload.purged retries; the purged one
// waits for it.
func TestRedeliveredHoldsLater(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner, _, _ := w.endpoint("https://hooks.example.com/again")
	upload := ids.NewUpload()
	w.enqueue(event(webhook.EventUploadDeleted, owner, upload))
	deleted := w.deliveries()[0]
	w.client.WebhookDelivery.UpdateOne(deleted).SetStatus(webhookdelivery.StatusFAILED).ExecX(ctx)
	w.enqueue(event(webhook.EventUploadPurged, owner, upload))
	w.enqueue(event(webhook.EventUploadRestored, owner, upload))
	if _, err := webhook.Redeliver(ctx, w.client, owner, deleted.MessageID); err != nil {
		t.Fatal(err)
	}
	sender := w.sender(local)
	var sent []string
	for range 3 {
		claimed, err := sender.Claim(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 {
			t.Fatalf("after %v, claimed %d deliveries of one upload at once, want 1", sent, len(claimed))
		}
		sent = append(sent, claimed[0].EventType)
		w.client.WebhookDelivery.UpdateOne(claimed[0]).SetStatus(webhookdelivery.StatusDELIVERED).ExecX(ctx)
	}
	if want := []string{webhook.EventUploadDeleted, webhook.EventUploadPurged, webhook.EventUploadRestored}; !slices.Equal(sent, want) {
		t.Fatalf("sent %v, want %v", sent, want)
	}
}

// sameSet compares comma-separated lists as multisets.
func sameSet(a, b string) bool {
	count := map[string]int{}
	for _, s := range strings.Split(a, ",") {
		count[s]++
	}
	for _, s := range strings.Split(b, ",") {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestAttemptsCounted: each attempt is counted by outcome in the metrics.
func TestAttemptsCounted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, ep, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	accepted := ids.NewUpload()
	rcv.setAnswer(func(a arrival) int {
		if a.UploadID == accepted {
			return http.StatusNoContent
		}
		return http.StatusBadGateway
	})
	w.enqueue(event(webhook.EventUploadDeleted, owner, accepted), event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	w.pending(ep, time.Now().Add(-webhook.DefaultRetryWindow), 40)
	m := metrics.New(nil)
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Metrics: m})
	for { // passes until each has had its attempt: one endpoint gets a few at a time
		attempted, _, err := sender.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if attempted == 0 {
			break
		}
	}
	res := httptest.NewRecorder()
	m.Handler().ServeHTTP(res, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, outcome := range []string{"delivered", "retry", "failed"} {
		if want := `uploads_webhook_attempts_total{outcome="` + outcome + `"} 1`; !strings.Contains(res.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
