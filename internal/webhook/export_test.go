package webhook

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/safedelete/uploads/ent"
)

// Claim claims due deliveries as a pass does and sends nothing: a sender
// that dies right after claiming.
func (s *Sender) Claim(ctx context.Context) ([]*ent.WebhookDelivery, error) {
	return s.claim(ctx, s.opts.Concurrency)
}

// ClaimNext claims up to slots deliveries as the commit of outcomes does
// for the workers going on: from what an earlier read found due, if that
// read is recent and holds enough (pickDue).
func (s *Sender) ClaimNext(ctx context.Context, slots int) ([]*ent.WebhookDelivery, error) {
	s.claiming.Lock()
	defer s.claiming.Unlock()
	picked, at, ahead, err := s.pickDue(ctx, slots, true)
	if err != nil {
		return nil, err
	}
	claimed, err := s.take(ctx, nil, picked, at)
	s.taken(ctx, claimed, ahead)
	return claimed, err
}

// ReadAheadFor sets how long what a claim read ahead serves.
func (s *Sender) ReadAheadFor(d time.Duration) { s.readAheadFor = d }

// Take claims deliveries read as due at now, as the second half of a pass
// does; the caller plays the first half with the database's client.
func (s *Sender) Take(ctx context.Context, due []*ent.WebhookDelivery, now time.Time) ([]*ent.WebhookDelivery, error) {
	return s.take(ctx, nil, due, now)
}

// Attempt sends a claimed delivery once and records the outcome.
func (s *Sender) Attempt(ctx context.Context, d *ent.WebhookDelivery) bool { return s.attempt(ctx, d) }

// Post makes one attempt at url and returns its error as the client gave it.
func (s *Sender) Post(ctx context.Context, url string) (int, error) {
	return s.post(ctx, url, "msg_test", []byte("{}"), []byte("secret"))
}

// Transport is the transport deliveries go through.
func (s *Sender) Transport() *http.Transport { return s.http.Transport.(*http.Transport) }

// BlockedReason is blockedReason.
var BlockedReason = blockedReason

// RefusedBeforeConnect reports whether err is the dialer's Control refusing
// an address: it runs before connect(2), so no packet left.
func RefusedBeforeConnect(err error) bool {
	var blocked *blockedError
	return errors.As(err, &blocked)
}

// Clip is clip, and MaxErrorLength the length it clips to.
var Clip, MaxErrorLength = clip, maxErrorLength

// Describe is how a failed attempt reads in last_error; Unreachable is
// what it says of a host it may not or cannot connect to.
func (s *Sender) Describe(ctx context.Context, err error) string {
	return s.describe(ctx, "ep_test", err)
}

const Unreachable = unreachable

// Outcome is an attempt's outcome for RecordTogether: delivered with Code,
// or failed with Code and Msg, due again at Next.
type Outcome struct {
	Delivery  *ent.WebhookDelivery
	Delivered bool
	Code      int
	Msg       string
	Next      time.Time
}

// RecordTogether records outcomes in one transaction, as attempts that
// end together are.
func (s *Sender) RecordTogether(outcomes ...Outcome) error {
	batch := make([]*pendingOutcome, len(outcomes))
	for i, o := range outcomes {
		batch[i] = &pendingOutcome{outcome: outcome{delivery: o.Delivery, delivered: o.Delivered, code: o.Code, msg: o.Msg, next: o.Next}}
	}
	_, err := s.outcomes.commitTaking(batch, nil, time.Time{})
	return err
}

// ClaimApart makes the sender's workers claim apart from their outcomes'
// commits, as before issue 26 (a baseline to measure against).
func (s *Sender) ClaimApart() { s.claimApart = true }

// OwnerShare is how many attempts one owner's endpoints that have not
// answered may have in flight.
func (s *Sender) OwnerShare() int { return s.ownerShare() }

// AheadWait sets how long a delivery claimed ahead waits for its turn.
func (s *Sender) AheadWait(d time.Duration) { s.aheadWait = d }

// PromptAnswer sets how soon an answer must come for its endpoint to be
// claimed ahead.
func (s *Sender) PromptAnswer(d time.Duration) { s.promptAnswer = d }
