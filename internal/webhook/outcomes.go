package webhook

import (
	"context"
	"errors"
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
// or failed with code and msg, due again at next; or, returned, a claim
// given back unsent, due again at next. Its claim stays counted in its
// attempts, which only grow: they are the claim's token (stillClaimed).
type outcome struct {
	delivery  *ent.WebhookDelivery
	delivered bool
	returned  bool
	code      int
	msg       string
	next      time.Time
}

// maxOutcomes bounds the outcomes of one transaction: twice the default
// workers, so that one commit records every attempt that ended while the
// last one waited for its turn.
const maxOutcomes = 2 * DefaultConcurrency

// outcomes commits the outcomes of attempts that end together in one
// transaction: the first to end is committed at once, and those that end
// while a commit is under way share the next one. A commit per attempt
// capped the sender at a few hundred deliveries a second, below the rate
// one instance deletes at (issue 26). Each attempt's worker waits for its
// outcome's commit before it takes another delivery, so nothing else
// changes: an outcome is recorded only while its claim holds
// (stillClaimed), and one whose commit fails leaves the delivery to its
// lease, after which it is sent again with the same webhook-id.
//
// A worker that will go on asks for its next delivery with its outcome:
// the same transaction claims the next deliveries for those workers,
// picked as fairly as every claim (Sender.pickDue). A worker then costs
// one commit per delivery, not a commit for its outcome and another for
// its next claim.
type outcomes struct {
	client *ent.Client
	sender *Sender // claims the next deliveries

	mu      sync.Mutex
	pending []*pendingOutcome
	running bool
}

type pendingOutcome struct {
	outcome
	more bool                 // the worker asks for its next delivery
	then *ent.WebhookDelivery // the delivery claimed for it, if any
	done chan error
}

// record commits o, with the outcomes of other attempts ending meanwhile,
// and returns once it has committed or failed; with more, it also returns
// the delivery claimed for this worker to send next in that commit, nil if
// none was due. It outlives ctx's cancellation, as recordContext does: the
// sender stopping must not leave a finished attempt unrecorded.
func (r *outcomes) record(o outcome, more bool) (*ent.WebhookDelivery, error) {
	p := &pendingOutcome{outcome: o, more: more, done: make(chan error, 1)}
	r.mu.Lock()
	r.pending = append(r.pending, p)
	if !r.running {
		r.running = true
		go r.run()
	}
	r.mu.Unlock()
	err := <-p.done
	return p.then, err
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

// commit writes a batch of outcomes in one transaction and claims there
// the next deliveries of the workers that ask for them, handing them out
// in the batch's order. They are read and picked before it begins (see
// pickDue), and the transaction only takes them. If the claim fails, the
// outcomes are committed alone: a failed claim must not cost a finished
// attempt its record.
func (r *outcomes) commit(batch []*pendingOutcome) error {
	wanted := 0
	for _, p := range batch {
		if p.more {
			wanted++
		}
	}
	if wanted == 0 || r.sender == nil {
		_, err := r.commitTaking(batch, nil, time.Time{})
		return err
	}
	s := r.sender
	s.claiming.Lock()
	defer s.claiming.Unlock()
	ctx, cancel := recordContext(context.Background())
	picked, at, ahead, err := s.pickDue(ctx, wanted, true)
	cancel()
	if err != nil {
		s.logger.Error("webhook claim failed", "error", err)
		picked = nil // the outcomes still commit
	}
	next, err := r.commitTaking(batch, picked, at)
	if errors.Is(err, errClaimNext) {
		next, err = r.commitTaking(batch, nil, at)
	}
	if err != nil {
		return err
	}
	ctx, cancel = recordContext(context.Background())
	s.taken(ctx, next, ahead)
	cancel()
	for _, p := range batch {
		if p.more && len(next) > 0 {
			p.then, next = next[0], next[1:]
		}
	}
	return nil
}

// errClaimNext marks a failure of the claim in an outcomes' transaction.
var errClaimNext = errors.New("claim the next deliveries")

// commitTaking writes a batch of outcomes in one transaction: the
// deliveries, in one statement per status code, and each failure with its
// own backoff; then claims those of picked still due at at (Sender.take),
// which it returns once committed.
func (r *outcomes) commitTaking(batch []*pendingOutcome, picked []*ent.WebhookDelivery, at time.Time) ([]*ent.WebhookDelivery, error) {
	ctx, cancel := recordContext(context.Background())
	defer cancel()
	now := time.Now()
	deliveredByCode := map[int][]predicate.WebhookDelivery{}
	for _, p := range batch {
		if p.delivered {
			deliveredByCode[p.code] = append(deliveredByCode[p.code], stillClaimed(p.delivery))
		}
	}
	var next []*ent.WebhookDelivery
	err := database.WithTx(ctx, r.client, func(tx *ent.Tx) error {
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
			if p.returned {
				err := tx.WebhookDelivery.Update().
					Where(stillClaimed(p.delivery)).
					SetNextAttemptAt(p.next).
					Exec(ctx)
				if err != nil {
					return fmt.Errorf("give back a claim: %w", err)
				}
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
		if len(picked) == 0 {
			return nil
		}
		var err error
		if next, err = r.sender.take(ctx, tx, picked, at); err != nil {
			return fmt.Errorf("%w: %w", errClaimNext, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}
