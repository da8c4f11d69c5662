package webhook_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestSilentEndpointBacksOff: attempts to an endpoint that does not answer
// take its owner's share of workers at most, and once they time out the endpoint's other
// deliveries wait (its circuit breaker is open) instead of each taking a
// worker for a timeout in turn. An endpoint that answers, even with an
// error, is not held back.
func TestSilentEndpointBacksOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	silent := newReceiver(t)
	owner, silentEndpoint, secret := w.endpoint(silent.URL)
	silent.trust(secret)
	release := make(chan struct{})
	var silentAttempts atomic.Int64
	silent.setAnswer(func(arrival) int { silentAttempts.Add(1); <-release; return http.StatusNoContent })
	t.Cleanup(func() { close(release) })
	refusing := failingReceiver(t)
	other, _, otherSecret := w.endpoint(refusing.URL)
	refusing.trust(otherSecret)
	const backlog = 10
	for range backlog {
		w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()), event(webhook.EventUploadDeleted, other, ids.NewUpload()))
	}
	ctx := context.Background()
	// Eight workers: two each at most for an owner, and so an endpoint,
	// until it has answered. The silent one's attempts run out the timeout;
	// the refusing one answers well within it, however busy the machine.
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Timeout: time.Second, Concurrency: 8})

	if attempted, _, err := sender.RunOnce(ctx); attempted != 4 || err != nil {
		t.Fatalf("first pass attempted %d (%v); want 2 to each endpoint", attempted, err)
	}
	var waiting, due int
	for _, d := range w.deliveries() {
		if d.EndpointID != silentEndpoint.ID {
			continue
		}
		if d.NextAttemptAt.After(time.Now().Add(500 * time.Millisecond)) {
			waiting++
		}
		if d.Attempts == 0 && !d.NextAttemptAt.After(time.Now()) {
			due++
		}
	}
	if waiting != backlog || due != 0 {
		t.Fatalf("after two timeouts, %d of the silent endpoint's %d deliveries wait, %d are due; want all waiting", waiting, backlog, due)
	}
	attempted, _, err := sender.RunOnce(ctx)
	// The endpoint that answered may now use all but a share of the
	// workers: 6 of 8. The silent one waits.
	if attempted != 6 || err != nil {
		t.Fatalf("second pass attempted %d (%v); want the answering endpoint's 6 only", attempted, err)
	}
	if n := silentAttempts.Load(); n != 2 {
		t.Fatalf("the silent endpoint got %d attempts; want 2", n)
	}
}

// TestHTTPCheckedAtSend: an http endpoint registered while http was
// allowed gets nothing from a sender that no longer allows it; the
// delivery says why.
func TestHTTPCheckedAtSend(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL) // registered with http allowed
	rcv.trust(secret)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	sender := webhook.NewSender(w.client, w.sealer, w.logger(), webhook.Options{AllowPrivateNetworks: true})
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != 1 || delivered != 0 || err != nil {
		t.Fatalf("RunOnce = %d, %d, %v; want 1 attempted, none delivered", attempted, delivered, err)
	}
	d := w.deliveries()[0]
	if len(rcv.got()) != 0 || d.Status != webhookdelivery.StatusPENDING || !strings.HasPrefix(d.LastError, "not sent: The webhook URL must use https") {
		t.Fatalf("receiver got %d requests; delivery %s, %q; want none sent, PENDING, not sent: https", len(rcv.got()), d.Status, d.LastError)
	}
}

// TestCheckKey: the readiness check fails when the webhook key does not
// open the stored secrets, and passes with the right key or no endpoints.
func TestCheckKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	if err := webhook.CheckKey(ctx, w.client, w.sealer); err != nil {
		t.Fatalf("without endpoints: %v", err)
	}
	w.endpoint("https://hooks.example.com/a")
	if err := webhook.CheckKey(ctx, w.client, w.sealer); err != nil {
		t.Fatalf("with the key that sealed: %v", err)
	}
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	other, err := webhook.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.CheckKey(ctx, w.client, other); err == nil {
		t.Fatal("another key passes the check")
	}
}
