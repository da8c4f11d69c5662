package webhook

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/database"
)

// outcome is what an attempt ended with, to record: delivered with code,
// or failed with code and msg, due again at next.
type outcome struct {
	delivery  *ent.WebhookDelivery
	delivered bool
	code      int
	msg       string
	next      time.Time
}

// maxOutcomes bounds the outcomes of one transaction.
const maxOutcomes = 64

// outcomes commits the outcomes of attempts that end together in one
// transaction: the first to end is committed at once, and those that end
// while a commit is under way share the next one. A commit per attempt
// capped the sender at a few hundred deliveries a second, below the rate
// one instance deletes at (issue 26). Each attempt's worker waits for its
// outcome's commit before it takes another delivery, so nothing else
// changes: an outcome is recorded only while its claim holds
// (stillClaimed), and one whose commit fails leaves the delivery to its
// lease, after which it is sent again with the same webhook-id.
type outcomes struct {
	client *ent.Client

	mu      sync.Mutex
	pending []*pendingOutcome
	running bool
}

type pendingOutcome struct {
	outcome
	done chan error
}

// record commits o, with the outcomes of other attempts ending meanwhile,
// and returns once it has committed or failed. It outlives ctx's
// cancellation, as recordContext does: the sender stopping must not leave
// a finished attempt unrecorded.
func (r *outcomes) record(o outcome) error {
	p := &pendingOutcome{outcome: o, done: make(chan error, 1)}
	r.mu.Lock()
	r.pending = append(r.pending, p)
	if !r.running {
		r.running = true
		go r.run()
	}
	r.mu.Unlock()
	return <-p.done
}

// run commits the pending outcomes, a batch at a time, until none is left.
func (r *outcomes) run() {
	for {
		r.mu.Lock()
		batch := r.pending[:min(len(r.pending), maxOutcomes)]
		r.pending = r.pending[len(batch):]
		if len(batch) == 0 {
			r.pending, r.running = nil, false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		err := r.commit(batch)
		for _, p := range batch {
			p.done <- err
		}
	}
}

// commit writes a batch of outcomes in one transaction: the deliveries, in
// one statement per status code, and each failure with its own backoff.
func (r *outcomes) commit(batch []*pendingOutcome) error {
	ctx, cancel := recordContext(context.Background())
	defer cancel()
	now := time.Now()
	deliveredByCode := map[int][]predicate.WebhookDelivery{}
	for _, p := range batch {
		if p.delivered {
			deliveredByCode[p.code] = append(deliveredByCode[p.code], stillClaimed(p.delivery))
		}
	}
	return database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
		for _, code := range slices.Sorted(maps.Keys(deliveredByCode)) {
			err := tx.WebhookDelivery.Update().
				Where(webhookdelivery.Or(deliveredByCode[code]...)).
				SetStatus(webhookdelivery.StatusDELIVERED).
				SetDeliveredAt(now).
				SetLastStatusCode(code).
				SetLastError("").
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("record %d deliveries: %w", len(deliveredByCode[code]), err)
			}
		}
		for _, p := range batch {
			if p.delivered {
				continue
			}
			err := tx.WebhookDelivery.Update().
				Where(stillClaimed(p.delivery)).
				SetNextAttemptAt(p.next).
				SetLastError(p.msg).
				SetLastStatusCode(p.code).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("record a failed attempt: %w", err)
			}
		}
		return nil
	})
}
