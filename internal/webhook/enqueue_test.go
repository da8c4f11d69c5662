package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestEnqueueFanOut: an event becomes one delivery per enabled endpoint of
// its owner subscribed to its type, due at once; other owners' endpoints
// and disabled ones get nothing.
func TestEnqueueFanOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	owner := ids.NewUser()
	create := func(ownerID string, events ...string) *ent.WebhookEndpoint {
		ep, _, err := webhook.CreateEndpoint(ctx, w.client, w.sealer, ownerID, "https://hooks.example.com/"+ids.NewMessage(), events, false)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	all := create(owner)
	deletedOnly := create(owner, webhook.EventUploadDeleted)
	disabled := create(owner)
	w.client.WebhookEndpoint.UpdateOne(disabled).SetDisabledAt(time.Now()).SetDisabledReason("test").ExecX(ctx)
	stranger := create(ids.NewUser())

	uploadID := ids.NewUpload()
	before := time.Now()
	w.enqueue(event(webhook.EventUploadCreated, owner, uploadID), event(webhook.EventUploadDeleted, owner, uploadID))
	// Another owner's events, in a call of their own and in one with
	// the first owner's: each reaches its owner's endpoints only.
	otherOwner := ids.NewUser()
	otherEndpoint := create(otherOwner)
	otherUpload := ids.NewUpload()
	w.enqueue(event(webhook.EventUploadPurged, otherOwner, otherUpload))
	w.client.WebhookDelivery.Delete().Where(webhookdelivery.EndpointID(otherEndpoint.ID)).ExecX(ctx)
	w.enqueue(event(webhook.EventUploadPurged, otherOwner, otherUpload), event(webhook.EventUploadRestored, owner, uploadID))

	got := map[string][]string{}
	messageIDs := map[string]bool{}
	for _, d := range w.deliveries() {
		got[d.EndpointID] = append(got[d.EndpointID], d.EventType)
		if d.Status != webhookdelivery.StatusPENDING || d.NextAttemptAt.Before(before.Add(-time.Second)) || d.NextAttemptAt.After(time.Now()) {
			t.Errorf("delivery %s: %s, due %v; want PENDING and due now", d.MessageID, d.Status, d.NextAttemptAt)
		}
		if !ids.Valid(ids.MessagePrefix, d.MessageID) || messageIDs[d.MessageID] || d.UploadID != uploadID && d.UploadID != otherUpload {
			t.Errorf("delivery %s of upload %s: malformed or repeated message id", d.MessageID, d.UploadID)
		}
		messageIDs[d.MessageID] = true
	}
	want := map[string][]string{
		all.ID:           {webhook.EventUploadCreated, webhook.EventUploadDeleted, webhook.EventUploadRestored},
		deletedOnly.ID:   {webhook.EventUploadDeleted},
		otherEndpoint.ID: {webhook.EventUploadPurged},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deliveries by endpoint %v, want %v (none for %s, disabled, nor %s, someone else's)", got, want, disabled.ID, stranger.ID)
	}
}

// TestEnqueueRolledBack: deliveries enqueued in a transaction that rolls
// back do not exist, and nothing is sent.
func TestEnqueueRolledBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	ctx := context.Background()
	errRollback := errors.New("the change failed")
	err := database.WithTx(ctx, w.client, func(tx *ent.Tx) error {
		if err := webhook.Enqueue(ctx, tx, event(webhook.EventUploadDeleted, owner, ids.NewUpload())); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if attempted, _, err := w.sender(local).RunOnce(ctx); attempted != 0 || err != nil {
		t.Fatalf("attempted %d (%v) after a rollback", attempted, err)
	}
	if n := len(w.deliveries()); n != 0 || len(rcv.got()) != 0 {
		t.Fatalf("%d deliveries, %d sent after a rollback", n, len(rcv.got()))
	}
}

// TestEnqueueWithoutEndpoints: for an owner without endpoints (the common
// case), Enqueue costs one read and writes nothing, however many events.
func TestEnqueueWithoutEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.endpoint("https://hooks.example.com/someone-else") // another owner's
	var queries, mutations atomic.Int64
	w.client.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			if _, ok := q.(*ent.WebhookEndpointQuery); !ok {
				t.Errorf("Enqueue queried %T", q)
			}
			queries.Add(1)
			return next.Query(ctx, q)
		})
	}))
	w.client.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			mutations.Add(1)
			return next.Mutate(ctx, m)
		})
	})
	owner := ids.NewUser()
	var events []webhook.Event
	for range 50 {
		events = append(events, event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	}
	w.enqueue(events...)
	if queries.Load() != 1 || mutations.Load() != 0 {
		t.Fatalf("%d queries, %d mutations; want 1 query and nothing written", queries.Load(), mutations.Load())
	}
}

// TestEnqueueMany: more deliveries than one INSERT holds (at most 65,535
// bound parameters in PostgreSQL, 32,766 in SQLite; eleven a row) are all
// written.
func TestEnqueueMany(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner, _, _ := w.endpoint("https://hooks.example.com/many")
	var events []webhook.Event
	for range 6001 {
		events = append(events, event(webhook.EventUploadPurged, owner, ids.NewUpload()))
	}
	w.enqueue(events...)
	if n := len(w.deliveries()); n != len(events) {
		t.Fatalf("%d deliveries, want %d", n, len(events))
	}
}

// TestEnqueueRefusesMalformedEvents: an unknown type or a missing owner is
// a programming error, reported rather than sent.
func TestEnqueueRefusesMalformedEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	for _, ev := range []webhook.Event{
		event("upload.exploded", ids.NewUser(), ids.NewUpload()),
		event(webhook.EventUploadDeleted, "", ids.NewUpload()),
		event(webhook.EventUploadDeleted, ids.NewUser(), ""),
	} {
		err := database.WithTx(ctx, w.client, func(tx *ent.Tx) error { return webhook.Enqueue(ctx, tx, ev) })
		if err == nil {
			t.Errorf("Enqueue(%+v) succeeded", ev)
		}
	}
}
