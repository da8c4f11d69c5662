package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// answeringEndpoint registers one owner's endpoint at rcv and lets sender
// deliver one event to it: the endpoint has answered, as a busy one has.
func answeringEndpoint(t *testing.T, w *world, rcv *receiver, sender *webhook.Sender) (owner string) {
	t.Helper()
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != 1 || delivered != 1 || err != nil {
		t.Fatalf("first delivery: RunOnce = %d, %d, %v; want 1, 1", attempted, delivered, err)
	}
	return owner
}

// TestOneOwnerClaimsAheadOfItsSends: the default sender lets one owner
// whose endpoint answers have claimed all its workers but a share, so that
// each commit of outcomes hands that owner's workers as many deliveries as
// they wait for (issue 26: one owner deleting alone on SQLite outran its
// endpoint at 12 a commit); its endpoint still gets no more than the
// owner's spare, 12, at once.
func TestOneOwnerClaimsAheadOfItsSends(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true})
	sender.PromptAnswer(time.Minute) // its answer is prompt, however busy the machine
	sender.AheadWait(time.Minute)    // and the claims wait their turn, however long it takes
	owner := answeringEndpoint(t, w, rcv, sender)
	const spare = 12
	// The first spare are held until all are in (the endpoint gets that
	// many at once); the rest stay long enough to overlap with any sent
	// beside them.
	held := newHolding(spare)
	var seen overlaps
	var answered atomic.Int64
	rcv.setAnswer(func(a arrival) int {
		if answered.Add(1) <= spare {
			seen.during(func() { held.hold("one") })
		} else {
			seen.during(func() { time.Sleep(20 * time.Millisecond) })
		}
		return http.StatusNoContent
	})
	want := webhook.DefaultConcurrency - sender.OwnerShare()
	w.enqueue(backlogOf(owner, webhook.DefaultConcurrency+10)...)
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != want || delivered != want || err != nil {
		t.Fatalf("RunOnce = %d attempted, %d delivered, %v; want %d each (all the workers but a share)", attempted, delivered, err, want)
	}
	if heldAtOnce, _ := held.peaks(); seen.peak() != spare || heldAtOnce != spare {
		t.Fatalf("the endpoint got %d attempts at once (%d of the first %d held together); want its owner's spare, %d, and no more",
			seen.peak(), heldAtOnce, spare, spare)
	}
}

// TestWaitingTurnEndsWhenTheEndpointFallsSilent: deliveries claimed ahead
// for an endpoint that answered, waiting for their turn while it starts
// to hang, are not sent once its attempts time out: the endpoint gets
// the spare's attempts, not one wave of them per timeout. The others are
// given back with no error recorded (their claim counted, as every
// claim is), and wait: the breaker postpones the endpoint's deliveries.
func TestWaitingTurnEndsWhenTheEndpointFallsSilent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	// 32 workers: an owner's share is 4, its spare 12, its claims 28.
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: 32, Timeout: 300 * time.Millisecond})
	sender.AheadWait(time.Minute)    // they wait for the endpoint's silence, not for their own bound
	sender.PromptAnswer(time.Minute) // its answer is prompt, however busy the machine
	owner := answeringEndpoint(t, w, rcv, sender)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var attempts atomic.Int64
	rcv.setAnswer(func(arrival) int { attempts.Add(1); <-release; return http.StatusNoContent })
	const claims, spare = 28, 12
	w.enqueue(backlogOf(owner, claims)...)
	attempted, delivered, err := sender.RunOnce(context.Background())
	if attempted != claims || delivered != 0 || err != nil {
		t.Fatalf("RunOnce = %d attempted, %d delivered, %v; want %d claimed, none delivered", attempted, delivered, err, claims)
	}
	if n := attempts.Load(); n != spare {
		t.Fatalf("the endpoint got %d attempts; want %d (the first wave, which timed out), the rest not sent", n, spare)
	}
	givenBack := 0
	for _, d := range w.deliveries() {
		if d.Status != webhookdelivery.StatusPENDING || d.LastError != "" {
			continue
		}
		givenBack++
		if d.Attempts != 1 || !d.NextAttemptAt.After(time.Now()) {
			t.Errorf("a delivery given back has %d attempts, is due at %s; want its one claim, later", d.Attempts, d.NextAttemptAt)
		}
	}
	if givenBack != claims-spare {
		t.Fatalf("%d deliveries were given back unsent; want %d", givenBack, claims-spare)
	}
}

// TestSlowEndpointGivesBackItsClaims: when an endpoint that answered
// starts to hang, the deliveries claimed ahead for it wait for their turn
// no longer than the sender's bound: they are given back (due at once, no
// error recorded), the endpoint is claimed no further ahead, and the
// workers they held serve another owner while its attempts still hang.
func TestSlowEndpointGivesBackItsClaims(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	slow := newReceiver(t)
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: 32, Timeout: time.Minute})
	sender.AheadWait(100 * time.Millisecond)
	sender.PromptAnswer(time.Minute) // its answer is prompt, however busy the machine
	ownerA := answeringEndpoint(t, w, slow, sender)
	release, done := make(chan struct{}), make(chan struct{})
	var hanging atomic.Int64
	slow.setAnswer(func(arrival) int { hanging.Add(1); <-release; return http.StatusNoContent })
	const claims, spare = 28, 12
	w.enqueue(backlogOf(ownerA, claims)...)
	ctx := context.Background()
	go func() { defer close(done); _, _, _ = sender.RunOnce(ctx) }()
	t.Cleanup(func() { close(release); <-done })
	eventually(t, 10*time.Second, "the deliveries waiting for their turn to be given back", func() bool {
		givenBack := 0
		for _, d := range w.deliveries() {
			if d.Status == webhookdelivery.StatusPENDING && d.Attempts == 1 && d.LastError == "" && !d.NextAttemptAt.After(time.Now()) {
				givenBack++
			}
		}
		return givenBack == claims-spare
	})
	if n := hanging.Load(); n != spare {
		t.Fatalf("%d attempts reached the hanging endpoint; want %d", n, spare)
	}
	// A's 16 are due again, and A has 12 in flight: more than its share,
	// so a claim takes none of A's; another owner's delivery goes.
	fast := newReceiver(t)
	ownerB, _, secretB := w.endpoint(fast.URL)
	fast.trust(secretB)
	w.enqueue(event(webhook.EventUploadDeleted, ownerB, ids.NewUpload()))
	claimed, err := sender.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].Edges.Endpoint.OwnerID != ownerB {
		var owners []string
		for _, d := range claimed {
			owners = append(owners, d.Edges.Endpoint.OwnerID)
		}
		t.Fatalf("a claim while A's attempts hang took %d deliveries (owners %v); want B's one only", len(claimed), owners)
	}
}

func backlogOf(owner string, n int) []webhook.Event {
	events := make([]webhook.Event, n)
	for i := range events {
		events[i] = event(webhook.EventUploadDeleted, owner, ids.NewUpload())
	}
	return events
}

// TestSlowAnswersAreNotClaimedAhead: an endpoint whose last answer came
// slowly (past 50 ms) is claimed its owner's spare only, as many as it is
// sent at once: its own pace is the limit, and claims ahead of it would
// only wait for their turn and be given back.
func TestSlowAnswersAreNotClaimedAhead(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	rcv.setAnswer(func(arrival) int { time.Sleep(80 * time.Millisecond); return http.StatusNoContent })
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: 32})
	owner := answeringEndpoint(t, w, rcv, sender)
	const spare = 12
	w.enqueue(backlogOf(owner, 28)...)
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != spare || delivered != spare || err != nil {
		t.Fatalf("RunOnce = %d attempted, %d delivered, %v; want the spare, %d, each", attempted, delivered, err, spare)
	}
}

// TestOwnerSendsItsSpareAcrossEndpoints: the spare bounds what one owner
// is sent at once across all its endpoints, claimed ahead or not: an
// owner cannot multiply it by registering more endpoints at one receiver.
func TestOwnerSendsItsSpareAcrossEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: 32})
	sender.PromptAnswer(time.Minute)
	sender.AheadWait(time.Minute)
	var seen overlaps
	owner := ids.NewUser()
	for range 3 {
		rcv := newReceiver(t)
		_, secret := w.endpointOf(owner, rcv.URL)
		rcv.trust(secret)
		rcv.setAnswer(func(arrival) int {
			seen.during(func() { time.Sleep(20 * time.Millisecond) })
			return http.StatusNoContent
		})
	}
	// An event goes to each of the owner's endpoints: all three answer,
	// and are claimed ahead from now on.
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != 3 || delivered != 3 || err != nil {
		t.Fatalf("first deliveries: RunOnce = %d, %d, %v; want 3, 3", attempted, delivered, err)
	}
	w.enqueue(backlogOf(owner, 10)...) // 30 deliveries
	const claims, spare = 28, 12
	if attempted, delivered, err := sender.RunOnce(context.Background()); attempted != claims || delivered != claims || err != nil {
		t.Fatalf("RunOnce = %d attempted, %d delivered, %v; want %d each", attempted, delivered, err, claims)
	}
	if most := seen.peak(); most > spare {
		t.Fatalf("the owner's three endpoints got %d attempts at once; want its spare, %d, at most", most, spare)
	}
}

// TestOtherOwnersBeforeClaimsAhead: claims ahead take only what nobody
// else wants. An owner whose prompt endpoint has a backlog past what one
// read sees does not take every slot the workers going on ask for: another
// owner's delivery, behind that backlog, is claimed first.
func TestOtherOwnersBeforeClaimsAhead(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: 32}) // reads 128 at a time
	sender.PromptAnswer(time.Minute)
	rcvA := newReceiver(t)
	ownerA := answeringEndpoint(t, w, rcvA, sender)
	w.enqueue(backlogOf(ownerA, 200)...)
	rcvB := newReceiver(t)
	ownerB, _, _ := w.endpoint(rcvB.URL)
	w.enqueue(event(webhook.EventUploadDeleted, ownerB, ids.NewUpload()))
	ctx := context.Background()
	var ofA, ofB int
	for range 3 { // as workers going on after three commits of outcomes
		claimed, err := sender.ClaimNext(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range claimed {
			if d.Edges.Endpoint.OwnerID == ownerB {
				ofB++
			} else {
				ofA++
			}
		}
	}
	if ofB != 1 {
		t.Fatalf("three claims of 8 took %d of A's backlog and %d of B's one delivery; want B's claimed", ofA, ofB)
	}
}

// overlaps counts the most calls of during at once.
type overlaps struct {
	mu       sync.Mutex
	in, most int
}

func (o *overlaps) during(f func()) {
	o.mu.Lock()
	o.in++
	o.most = max(o.most, o.in)
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.in--
		o.mu.Unlock()
	}()
	f()
}

func (o *overlaps) peak() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.most
}
