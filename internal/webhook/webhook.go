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
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/database"
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
	var queued []queuedDelivery
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
			queued = append(queued, queuedDelivery{
				key: pairKey{endpointID: ep.ID, uploadID: ev.UploadID},
				create: tx.WebhookDelivery.Create().
					SetMessageID(ids.NewMessage()).
					SetEndpointID(ep.ID).
					SetUploadID(ev.UploadID).
					SetEventType(ev.Type).
					SetPayload(body).
					SetNextAttemptAt(now).
					SetCreatedAt(now),
			})
		}
	}
	if len(queued) == 0 {
		return nil
	}
	last, err := lastPending(ctx, tx, queued)
	if err != nil {
		return err
	}
	// Each delivery waits for the one queued before it of its upload to
	// its endpoint: one still pending, or one of these. Those after one of
	// these go in a later INSERT, once its id is known.
	for len(queued) > 0 {
		var round, later []queuedDelivery
		inRound := map[pairKey]bool{}
		for _, q := range queued {
			if inRound[q.key] {
				later = append(later, q)
				continue
			}
			inRound[q.key] = true
			if id, ok := last[q.key]; ok {
				q.create.SetAfterID(id)
			}
			round = append(round, q)
		}
		for chunk := range slices.Chunk(round, insertChunk) {
			creates := make([]*ent.WebhookDeliveryCreate, len(chunk))
			for i, q := range chunk {
				creates[i] = q.create
			}
			if len(later) == 0 { // no delivery waits for these: their ids are not needed
				if err := tx.WebhookDelivery.CreateBulk(creates...).Exec(ctx); err != nil {
					return fmt.Errorf("webhook: enqueue %d deliveries: %w", len(chunk), err)
				}
				continue
			}
			created, err := tx.WebhookDelivery.CreateBulk(creates...).Save(ctx)
			if err != nil {
				return fmt.Errorf("webhook: enqueue %d deliveries: %w", len(chunk), err)
			}
			for i, q := range chunk {
				last[q.key] = created[i].ID
			}
		}
		queued = later
	}
	return nil
}

// lastPendingOfPair is lastPending's read for one endpoint and one upload,
// through the (endpoint_id, upload_id) index. PostgreSQL's placeholders are
// also SQLite's.
var lastPendingOfPair = fmt.Sprintf("SELECT %[1]s FROM %[2]s WHERE %[3]s = $1 AND %[4]s = $2 AND %[5]s = $3 ORDER BY %[1]s DESC LIMIT 1",
	webhookdelivery.FieldID, webhookdelivery.Table, webhookdelivery.FieldEndpointID, webhookdelivery.FieldUploadID, webhookdelivery.FieldStatus)

// pairKey is an endpoint and an upload: the deliveries sent in order.
type pairKey struct{ endpointID, uploadID string }

// queuedDelivery is a delivery to insert, with its pair.
type queuedDelivery struct {
	key    pairKey
	create *ent.WebhookDeliveryCreate
}

// lastPending returns, for each pair of the queued deliveries that has
// any, the id of its latest delivery still PENDING (in flight, backing
// off or due): the one a new delivery of the pair waits for (after_id),
// so that the sender checks one row by its key rather than search the
// pair's deliveries (see firstPendingOfUpload). One indexed read per
// insertChunk uploads, made only for owners with endpoints.
func lastPending(ctx context.Context, tx *ent.Tx, queued []queuedDelivery) (map[pairKey]int, error) {
	var endpointIDs, uploadIDs []string
	for _, q := range queued {
		if !slices.Contains(endpointIDs, q.key.endpointID) {
			endpointIDs = append(endpointIDs, q.key.endpointID)
		}
		uploadIDs = append(uploadIDs, q.key.uploadID)
	}
	slices.Sort(uploadIDs)
	uploadIDs = slices.Compact(uploadIDs)
	last := map[pairKey]int{}
	if len(endpointIDs) == 1 && len(uploadIDs) == 1 {
		// Nearly every change: one upload, its owner's one endpoint. A
		// statement built once: Ent's builder costs more than the read,
		// which on SQLite holds the one writer's turn (issue 22).
		key := pairKey{endpointID: endpointIDs[0], uploadID: uploadIDs[0]}
		var id int
		err := database.QueryRow(ctx, tx, lastPendingOfPair, []any{key.endpointID, key.uploadID, webhookdelivery.StatusPENDING.String()}, &id)
		switch {
		case errors.Is(err, stdsql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("webhook: find pending deliveries: %w", err)
		default:
			last[key] = id
		}
		return last, nil
	}
	for chunk := range slices.Chunk(uploadIDs, insertChunk) {
		// Every delivery of the pairs, the status sorted out here: with
		// "status = PENDING" in the statement, SQLite searched the
		// (endpoint_id, status, next_attempt_at) index, all of each
		// endpoint's pending deliveries, so that a backlog made every
		// purge's end (which queues upload.purged for many uploads at once)
		// slower in the one writer's turn, and the backlog grew faster
		// (issue 26). Without it, only the (endpoint_id, upload_id) index
		// fits: a few rows per pair.
		deliveries, err := tx.WebhookDelivery.Query().
			Where(
				webhookdelivery.EndpointIDIn(endpointIDs...),
				webhookdelivery.UploadIDIn(chunk...),
			).
			Select(webhookdelivery.FieldID, webhookdelivery.FieldEndpointID, webhookdelivery.FieldUploadID, webhookdelivery.FieldStatus).
			All(ctx)
		if err != nil {
			return nil, fmt.Errorf("webhook: find pending deliveries: %w", err)
		}
		for _, d := range deliveries {
			if d.Status == webhookdelivery.StatusPENDING {
				key := pairKey{endpointID: d.EndpointID, uploadID: d.UploadID}
				last[key] = max(last[key], d.ID)
			}
		}
	}
	return last, nil
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
