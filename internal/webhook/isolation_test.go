package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestHangingEndpointsDelayNoOneElse: one owner's endpoints that accept
// connections and never answer hold a few of the sender's workers, not
// all of them: another owner's delivery, enqueued after a backlog of the
// first owner's, arrives while those attempts still hang.
func TestHangingEndpointsDelayNoOneElse(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const hangingEndpoints = 3
	uploads := 4*webhook.DefaultConcurrency + 10 // a backlog past what one read of the oldest sees
	var mu sync.Mutex
	hanging, mostHanging, ended := 0, 0, 0
	release := make(chan struct{})
	ownerA := ids.NewUser()
	for range hangingEndpoints {
		rcv := newReceiver(t)
		_, secret := w.endpointOf(ownerA, rcv.URL)
		rcv.trust(secret)
		rcv.setAnswer(func(arrival) int {
			mu.Lock()
			hanging++
			mostHanging = max(mostHanging, hanging)
			mu.Unlock()
			<-release // past the attempt's timeout: the sender hangs up first
			mu.Lock()
			hanging--
			ended++
			mu.Unlock()
			return http.StatusNoContent
		})
	}
	t.Cleanup(func() { close(release) }) // before the servers close: cleanups run last first
	backlog := make([]webhook.Event, uploads)
	for i := range backlog {
		backlog[i] = event(webhook.EventUploadDeleted, ownerA, ids.NewUpload())
	}
	w.enqueue(backlog...)
	rcvB := newReceiver(t)
	ownerB, _, secretB := w.endpoint(rcvB.URL)
	rcvB.trust(secretB)
	w.enqueue(event(webhook.EventUploadDeleted, ownerB, ids.NewUpload()))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	began := time.Now()
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Timeout: time.Minute})
	go func() {
		defer close(done)
		sender.Run(ctx, nil)
	}()
	defer func() { cancel(); <-done }()

	// A's attempts are let hang as long as they come: with all the
	// workers theirs (a pass of the oldest), B's would wait a minute, for
	// their timeout.
	share := sender.OwnerShare()
	if share != 4 {
		t.Fatalf("an owner's share of the default sender is %d attempts, want 4 (a quarter of 16) however many workers it has", share)
	}
	for len(rcvB.got()) == 0 {
		mu.Lock()
		most := mostHanging
		mu.Unlock()
		if most > share {
			t.Fatalf("%d of A's attempts hang at once (more than an owner's share, %d) and B's delivery has not arrived", most, share)
		}
		if time.Since(began) > 20*time.Second {
			t.Fatal("B's delivery has not arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("B's delivery arrived after %s", time.Since(began).Round(time.Millisecond))
	mu.Lock()
	if ended > 0 {
		t.Fatalf("B's delivery arrived after %d of A's attempts ended; want it not to wait for them", ended)
	}
	mu.Unlock()
	// A's attempts hang meanwhile, as many as A's share and no more.
	eventually(t, 10*time.Second, "A's share of attempts to hang", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hanging == share
	})
	mu.Lock()
	defer mu.Unlock()
	if mostHanging > share || ended > 0 {
		t.Fatalf("%d of A's attempts hung at once, %d ended; want at most %d, none ended", mostHanging, ended, share)
	}
}
