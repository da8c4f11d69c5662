// Package webhook tells users what happens to their uploads, by Standard
// Webhooks (https://www.standardwebhooks.com): signed JSON POSTs to the
// endpoints they register.
//
// An event is written to an outbox, one WebhookDelivery row per endpoint,
// in the transaction of the change it reports (Enqueue): it commits with
// the change or not at all, and wakes the senders (queue.Queue.WakeOnDue).
// A Sender claims due deliveries with a lease, as the purger claims purges
// (package queue: one UPDATE moving next_attempt_at forward), sends them,
// and retries failures with
// capped, jittered backoff for a retry window; a delivery still failing
// after it is FAILED, and its endpoint disabled. Delivery is at least once:
// every attempt carries the same webhook-id, for receivers to drop
// duplicates. Endpoints are isolated from each other: the sender shares
// its workers among owners and endpoints in turn, and postpones an endpoint
// that does not answer (claim.go).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/ids"
)

// Event types, as receivers see them in a payload's "type".
const (
	EventUploadCreated  = "upload.created"
	EventUploadDeleted  = "upload.deleted"
	EventUploadRestored = "upload.restored"
	EventUploadPurged   = "upload.purged"
	// EventUploadHoldPlaced and EventUploadHoldReleased tell of legal
	// holds on an upload (internal/holds).
	EventUploadHoldPlaced   = "upload.hold_placed"
	EventUploadHoldReleased = "upload.hold_released"
)

// EventTypes returns every event type an endpoint can subscribe to.
func EventTypes() []string {
	return []string{EventUploadCreated, EventUploadDeleted, EventUploadRestored, EventUploadPurged, EventUploadHoldPlaced, EventUploadHoldReleased}
}

// Event is something that happened to an upload, for its owner's endpoints.
type Event struct {
	Type    string // one of the Event* constants
	OwnerID string // whose endpoints hear of it
	// UploadID orders deliveries: those of one upload to one endpoint are
	// sent in the order they were enqueued.
	UploadID string
	Time     time.Time // when it happened; zero is now
	Data     UploadData
}

// UploadData is what an event tells about its upload: what the owner sees
// of it, never where it is stored.
type UploadData struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	Status   string `json:"status"`
	// Receipt is the deletion receipt (a compact JWS, internal/receipt) of
	// an upload gone for good: on upload.purged, and on upload.deleted for
	// an upload that never stored an object. Absent from other events, so
	// that their bodies are as they were.
	Receipt string `json:"receipt,omitempty"`
}

// payload is the body of a delivery.
type payload struct {
	Type      string     `json:"type"`
	Timestamp string     `json:"timestamp"`
	Data      UploadData `json:"data"`
}

// insertChunk bounds the rows of one INSERT, well under the bound
// parameters SQLite and PostgreSQL accept (about ten a row).
const insertChunk = 500

// Enqueue records, inside tx, one delivery of each event to each enabled
// endpoint of the event's owner that subscribes to its type. They are due
// at once; a Sender sends them once tx commits, and never if it rolls back.
// Owners without endpoints cost one indexed read.
func Enqueue(ctx context.Context, tx *ent.Tx, events ...Event) error {
	var owners []string
	for _, ev := range events {
		if !slices.Contains(EventTypes(), ev.Type) {
			return fmt.Errorf("webhook: unknown event type %q", ev.Type)
		}
		if ev.OwnerID == "" || ev.UploadID == "" {
			return errors.New("webhook: an event needs an owner and an upload id")
		}
		if !slices.Contains(owners, ev.OwnerID) {
			owners = append(owners, ev.OwnerID) // nearly always one
		}
	}
	if len(owners) == 0 {
		return nil
	}
	endpoints, err := tx.WebhookEndpoint.Query().
		Where(webhookendpoint.OwnerIDIn(owners...), webhookendpoint.DisabledAtIsNil()).
		Select(webhookendpoint.FieldID, webhookendpoint.FieldOwnerID, webhookendpoint.FieldEvents).
		All(ctx)
	if err != nil {
		return fmt.Errorf("webhook: list endpoints: %w", err)
	}
	if len(endpoints) == 0 {
		return nil
	}
	now := time.Now()
	var creates []*ent.WebhookDeliveryCreate
	for _, ev := range events {
		var body string // the same bytes for every endpoint, made at most once
		for _, ep := range endpoints {
			if ep.OwnerID != ev.OwnerID || len(ep.Events) > 0 && !slices.Contains(ep.Events, ev.Type) {
				continue
			}
			if body == "" {
				if body, err = marshalPayload(ev, now); err != nil {
					return err
				}
			}
			creates = append(creates, tx.WebhookDelivery.Create().
				SetMessageID(ids.NewMessage()).
				SetEndpointID(ep.ID).
				SetUploadID(ev.UploadID).
				SetEventType(ev.Type).
				SetPayload(body).
				SetNextAttemptAt(now).
				SetCreatedAt(now))
		}
	}
	for chunk := range slices.Chunk(creates, insertChunk) {
		if err := tx.WebhookDelivery.CreateBulk(chunk...).Exec(ctx); err != nil {
			return fmt.Errorf("webhook: enqueue %d deliveries: %w", len(chunk), err)
		}
	}
	return nil
}

func marshalPayload(ev Event, now time.Time) (string, error) {
	at := ev.Time
	if at.IsZero() {
		at = now
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "a&b.txt", not "a\u0026b.txt"
	err := enc.Encode(payload{Type: ev.Type, Timestamp: at.UTC().Format(time.RFC3339Nano), Data: ev.Data})
	if err != nil {
		return "", fmt.Errorf("webhook: encode payload: %w", err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
