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
}

// Record writes, inside tx, the audit event of kind made by actor for each
// subject, and queues it for the owners' endpoints unless endpoints says
// they have none.
func Record(ctx context.Context, tx *ent.Tx, actor audit.Actor, kind auditevent.Kind, endpoints Endpoints, subjects ...audit.Subject) error {
	_, err := RecordHashed(ctx, tx, actor, kind, endpoints, subjects...)
	return err
}

// RecordHashed is Record that returns the audit events' hashes (their
// places in the owners' chains), in the order of subjects.
func RecordHashed(ctx context.Context, tx *ent.Tx, actor audit.Actor, kind auditevent.Kind, endpoints Endpoints, subjects ...audit.Subject) ([]audit.Hash, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	if eventType, ok := eventTypes[kind]; ok && endpoints == MayHave {
		now := time.Now()
		events := make([]webhook.Event, len(subjects))
		for i, s := range subjects {
			events[i] = webhook.Event{
				Type: eventType, OwnerID: s.OwnerID, UploadID: s.ID, Time: now,
				Data: webhook.UploadData{ID: s.ID, Filename: s.Filename, Size: s.Size, Status: s.Status},
			}
		}
		if err := webhook.Enqueue(ctx, tx, events...); err != nil {
			return nil, err
		}
	}
	return audit.Record(ctx, tx, actor, kind, subjects...)
}
