// Package change records a change to uploads where the service promises
// it: in the audit trail (internal/audit) and, for the owners' webhook
// endpoints, in the outbox (internal/webhook), both inside the transaction
// that makes the change, so that neither can miss a committed change nor
// tell of one that rolled back.
package change

import (
	"context"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/webhook"
)

// Endpoints says what the recorder knows of the owners' webhook endpoints.
type Endpoints int

const (
	// MayHave: the outbox reads the owners' endpoints (one indexed read).
	MayHave Endpoints = iota
	// NoneLive: the transaction saw the owners have no live endpoint, so
	// there is nothing to queue and nothing to read.
	NoneLive
)

// eventTypes are the kinds of change that owners' endpoints hear of.
var eventTypes = map[auditevent.Kind]string{
	audit.Created:  webhook.EventUploadCreated,
	audit.Deleted:  webhook.EventUploadDeleted,
	audit.Restored: webhook.EventUploadRestored,
	audit.Purged:   webhook.EventUploadPurged,

	audit.HoldPlaced:   webhook.EventUploadHoldPlaced,
	audit.HoldReleased: webhook.EventUploadHoldReleased,
}

// Record writes, inside tx, the audit event of kind made by actor for each
// subject, and queues it for the owners' endpoints unless endpoints says
// they have none.
func Record(ctx context.Context, tx *ent.Tx, actor audit.Actor, kind auditevent.Kind, endpoints Endpoints, subjects ...audit.Subject) error {
	return RecordWithReceipts(ctx, tx, actor, kind, endpoints, nil, subjects...)
}

// Receipts issues, inside tx, the deletion receipts of the subjects whose
// audit events were just written (auditHashes: those events' hashes, their
// places in the owners' chains, in subject order), and returns each
// receipt by upload id.
type Receipts func(ctx context.Context, tx *ent.Tx, auditHashes []string) (map[string]string, error)

// RecordWithReceipts is Record that also issues the subjects' deletion
// receipts (receipts nil: none) once their audit events are written, so
// that each receipt names its event's hash, and hands each to its webhook
// event.
func RecordWithReceipts(ctx context.Context, tx *ent.Tx, actor audit.Actor, kind auditevent.Kind, endpoints Endpoints, receipts Receipts, subjects ...audit.Subject) error {
	return RecordAt(ctx, tx, time.Now(), actor, kind, endpoints, receipts, subjects...)
}

// RecordAt is RecordWithReceipts with the audit events' time given
// (audit.RecordAt).
func RecordAt(ctx context.Context, tx *ent.Tx, at time.Time, actor audit.Actor, kind auditevent.Kind, endpoints Endpoints, receipts Receipts, subjects ...audit.Subject) error {
	if len(subjects) == 0 {
		return nil
	}
	hashes, err := audit.RecordAt(ctx, tx, actor, kind, at, subjects...)
	if err != nil {
		return err
	}
	var issued map[string]string
	if receipts != nil {
		auditHashes := make([]string, len(hashes))
		for i, h := range hashes {
			auditHashes[i] = h.String()
		}
		if issued, err = receipts(ctx, tx, auditHashes); err != nil {
			return err
		}
	}
	if eventType, ok := eventTypes[kind]; ok && endpoints == MayHave {
		now := time.Now()
		events := make([]webhook.Event, len(subjects))
		for i, s := range subjects {
			events[i] = webhook.Event{
				Type: eventType, OwnerID: s.OwnerID, UploadID: s.ID, Time: now,
				Data: webhook.UploadData{ID: s.ID, Filename: s.Filename, Size: s.Size, Status: s.Status, Receipt: issued[s.ID]},
			}
		}
		return webhook.Enqueue(ctx, tx, events...)
	}
	return nil
}
