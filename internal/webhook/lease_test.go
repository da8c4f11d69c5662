package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestLeaseExpires: a claimed delivery is not claimed again while its
// lease lasts; once it expires (its sender died), it is sent again.
func TestLeaseExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	ctx := context.Background()

	const timeout = 200 * time.Millisecond // the lease is 3 timeouts
	dead := w.sender(webhook.Options{AllowPrivateNetworks: true, Timeout: timeout})
	began := time.Now()
	if claimed, err := dead.Claim(ctx); err != nil || len(claimed) != 1 {
		t.Fatalf("Claim = %d, %v", len(claimed), err)
	}
	leaseEnd := w.deliveries()[0].NextAttemptAt
	if leaseEnd.Before(began.Add(3 * timeout)) {
		t.Fatalf("claimed for %v, want a lease of 3 timeouts (%v)", leaseEnd.Sub(began), 3*timeout)
	}
	// Read as due by a sender whose clock says the lease has a moment left
	// (however slow this machine), it is not taken.
	alive := w.sender(local)
	due := w.client.WebhookDelivery.Query().WithEndpoint().AllX(ctx)
	if claimed, err := alive.Take(ctx, due, leaseEnd.Add(-time.Millisecond)); err != nil || len(claimed) != 0 {
		t.Fatalf("claimed again within the lease: %d, %v", len(claimed), err)
	}
	var attempted, delivered int
	eventually(t, 5*time.Second, "the claim to expire", func() bool {
		var err error
		attempted, delivered, err = alive.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if attempted > 0 && time.Now().Before(leaseEnd) {
			t.Fatalf("claimed again %v before the lease ended", time.Until(leaseEnd))
		}
		return attempted > 0
	})
	if delivered != 1 || len(rcv.got()) != 1 {
		t.Fatalf("delivered %d, receiver got %d", delivered, len(rcv.got()))
	}
	if d := w.deliveries()[0]; d.Status != webhookdelivery.StatusDELIVERED || d.Attempts != 2 {
		t.Fatalf("delivery %s after %d attempts, want DELIVERED after 2", d.Status, d.Attempts)
	}
}

// TestClaimIsConditional: two senders that read the same due deliveries
// at once do not both claim them: the second finds them claimed.
func TestClaimIsConditional(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner, _, _ := w.endpoint("https://hooks.example.com/a")
	for range 3 {
		w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	}
	ctx := context.Background()
	now := time.Now()
	read := func() []*ent.WebhookDelivery {
		return w.client.WebhookDelivery.Query().WithEndpoint().AllX(ctx)
	}
	first, second := read(), read()
	if claimed, err := w.sender(local).Take(ctx, first, now); err != nil || len(claimed) != 3 {
		t.Fatalf("first sender claimed %d, %v; want 3", len(claimed), err)
	}
	if claimed, err := w.sender(local).Take(ctx, second, now); err != nil || len(claimed) != 0 {
		t.Fatalf("second sender claimed %d, %v; want none", len(claimed), err)
	}
}

// TestStaleClaimLeavesNewClaimAlone: a sender whose lease ran out while it
// was stuck records nothing over the claim that replaced it, so the
// delivery is not freed for a third sender while the second still sends it.
func TestStaleClaimLeavesNewClaimAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	rcv.setAnswer(func(arrival) int { return http.StatusInternalServerError })
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	ctx := context.Background()
	opts := webhook.Options{AllowPrivateNetworks: true, Timeout: 50 * time.Millisecond, MaxBackoff: time.Millisecond}

	stuck := w.sender(opts)
	stale, err := stuck.Claim(ctx)
	if err != nil || len(stale) != 1 {
		t.Fatalf("Claim = %d, %v", len(stale), err)
	}
	second := w.sender(opts)
	var claimed int
	eventually(t, 5*time.Second, "the lease to expire", func() bool {
		c, err := second.Claim(ctx)
		claimed = len(c)
		return err == nil && claimed == 1
	})
	leaseEnd := w.deliveries()[0].NextAttemptAt
	stuck.Attempt(ctx, stale[0]) // fails (500), and must not record it
	// A third sender whose clock says the second's lease has a moment left
	// (however slow this machine) does not take it.
	due := w.client.WebhookDelivery.Query().WithEndpoint().AllX(ctx)
	if claimed, err := w.sender(opts).Take(ctx, due, leaseEnd.Add(-time.Millisecond)); len(claimed) != 0 || err != nil {
		t.Fatalf("a third sender claimed %d (%v) while the second's claim holds", len(claimed), err)
	}
	if d := w.deliveries()[0]; d.LastError != "" || d.Attempts != 2 {
		t.Fatalf("the stale attempt was recorded over the live claim: %q, %d attempts", d.LastError, d.Attempts)
	}
}

// TestTwoSendersNeverOverlap: two senders, each with its own connection
// pool as two instances have, share many deliveries (some failing and
// retried): no delivery is ever in flight twice at once, each is accepted
// once, and each upload's events arrive in order.
func TestTwoSendersNeverOverlap(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	var mu sync.Mutex
	n := 0
	rcv.setAnswer(func(arrival) int {
		mu.Lock()
		n++
		fail := n%7 == 0
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // an attempt takes a while: room to overlap
		if fail {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	order := []string{webhook.EventUploadCreated, webhook.EventUploadDeleted, webhook.EventUploadPurged}
	var events []webhook.Event
	for range 50 {
		uploadID := ids.NewUpload()
		for _, typ := range order {
			events = append(events, event(typ, owner, uploadID))
		}
	}
	w.enqueue(events...)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	opts := webhook.Options{AllowPrivateNetworks: true, PollInterval: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond, Concurrency: 8}
	for _, client := range []*ent.Client{w.client, openClient(t, w.url)} {
		wg.Go(func() { w.senderOn(client, opts).Run(ctx, nil) })
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n, err := w.client.WebhookDelivery.Query().Where(webhookdelivery.StatusNEQ(webhookdelivery.StatusDELIVERED)).Count(ctx)
		if err == nil && n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	if overlaps := rcv.overlapping(); len(overlaps) > 0 {
		t.Errorf("%d attempts arrived while another of the same delivery was in flight: %v", len(overlaps), overlaps)
	}
	accepted := map[string]int{}
	next := map[string]int{} // upload → index in order of the next event to accept
	for _, a := range rcv.got() {
		if a.Status != http.StatusOK {
			continue
		}
		accepted[a.ID]++
		if accepted[a.ID] == 1 {
			if a.Type != order[next[a.UploadID]] {
				t.Errorf("upload %s: %s accepted when %s was due", a.UploadID, a.Type, order[next[a.UploadID]])
			}
			next[a.UploadID]++
		}
	}
	for _, d := range w.deliveries() {
		if accepted[d.MessageID] != 1 || d.Status != webhookdelivery.StatusDELIVERED {
			t.Errorf("delivery %s %s, accepted %d times; want DELIVERED, accepted once", d.MessageID, d.Status, accepted[d.MessageID])
		}
	}
}
