package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/durationtext"
)

// stillClaimed matches a claimed delivery only while the claim is this
// one: if the lease ran out and another sender claimed it (attempts went
// up) or finished it, a late outcome is dropped rather than written over
// the newer one.
func stillClaimed(d *ent.WebhookDelivery) predicate.WebhookDelivery {
	return webhookdelivery.And(
		webhookdelivery.ID(d.ID),
		webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
		webhookdelivery.Attempts(d.Attempts),
	)
}

// recordContext bounds writing an attempt's outcome. It outlives ctx: the
// sender stopping must not leave a finished attempt unrecorded.
func recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// delivered records a delivered attempt. With more, it returns the
// delivery claimed in the same commit for the worker to send next (nil if
// none is due).
func (s *Sender) delivered(ctx context.Context, d *ent.WebhookDelivery, code int, more bool) *ent.WebhookDelivery {
	s.opts.Metrics.WebhookDelivery("delivered")
	next, err := s.outcomes.record(outcome{delivery: d, delivered: true, code: code}, more)
	if err != nil {
		// The lease expires and it is sent again, with the same webhook-id.
		s.logger.ErrorContext(ctx, "record webhook delivery", "message_id", d.MessageID, "error", err)
		return nil
	}
	s.logger.InfoContext(ctx, "webhook delivered", "message_id", d.MessageID, "endpoint_id", d.EndpointID,
		"event_type", d.EventType, "status_code", code, "attempts", d.Attempts)
	return next
}

// giveBack returns a claimed delivery unsent (see Sender.enter), due at
// next, with no error recorded: nothing was sent.
func (s *Sender) giveBack(ctx context.Context, d *ent.WebhookDelivery, next time.Time) {
	if _, err := s.outcomes.record(outcome{delivery: d, returned: true, next: next}, false); err != nil {
		// The lease expires and it is sent then.
		s.logger.ErrorContext(ctx, "give back a webhook delivery", "message_id", d.MessageID, "error", err)
	}
}

// failed records a failed attempt: the delivery is due again after a
// backoff, or, past the retry window, FAILED. With more, it returns the
// delivery claimed in the same commit for the worker to send next.
func (s *Sender) failed(ctx context.Context, d *ent.WebhookDelivery, code int, msg string, more bool) *ent.WebhookDelivery {
	now := time.Now()
	windowEnd := d.CreatedAt.Add(s.opts.RetryWindow)
	if !now.Before(windowEnd) {
		ctx, cancel := recordContext(ctx)
		defer cancel()
		s.giveUp(ctx, d, code, msg, now)
		return nil
	}
	s.opts.Metrics.WebhookDelivery("retry")
	next := now.Add(backoff.Delay(d.Attempts, firstBackoff, s.opts.MaxBackoff))
	if next.After(windowEnd) {
		next = windowEnd // the last attempt comes when the window closes
	}
	then, err := s.outcomes.record(outcome{delivery: d, code: code, msg: msg, next: next}, more)
	if err != nil {
		s.logger.ErrorContext(ctx, "record webhook failure", "message_id", d.MessageID, "error", err)
	}
	s.logger.WarnContext(ctx, "webhook attempt failed; will retry", "message_id", d.MessageID, "endpoint_id", d.EndpointID,
		"attempts", d.Attempts, "retry_in", next.Sub(now).Round(time.Millisecond), "error", msg)
	return then
}

// giveUp makes a delivery FAILED and disables its endpoint, unless another
// delivery reached the endpoint since this one was created: then the
// endpoint works and refuses only this message.
func (s *Sender) giveUp(ctx context.Context, d *ent.WebhookDelivery, code int, msg string, now time.Time) {
	s.opts.Metrics.WebhookDelivery("failed")
	reason := fmt.Sprintf("deliveries failed for %s; last error: %s", durationtext.Short(s.opts.RetryWindow), msg)
	var disabled int
	err := database.WithTx(ctx, s.client, func(tx *ent.Tx) error {
		n, err := tx.WebhookDelivery.Update().
			Where(stillClaimed(d)).
			SetStatus(webhookdelivery.StatusFAILED).
			SetLastError(msg).
			SetLastStatusCode(code).
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		reached, err := tx.WebhookDelivery.Query().
			Where(
				webhookdelivery.EndpointID(d.EndpointID),
				webhookdelivery.StatusEQ(webhookdelivery.StatusDELIVERED),
				webhookdelivery.DeliveredAtGT(d.CreatedAt),
			).
			Exist(ctx)
		if err != nil || reached {
			return err
		}
		disabled, err = tx.WebhookEndpoint.Update().
			Where(webhookendpoint.ID(d.EndpointID), webhookendpoint.DisabledAtIsNil()).
			SetDisabledAt(now).
			SetDisabledReason(clip(reason)).
			Save(ctx)
		return err
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "record webhook failure", "message_id", d.MessageID, "error", err)
		return
	}
	s.logger.WarnContext(ctx, "webhook delivery failed for good", "message_id", d.MessageID, "endpoint_id", d.EndpointID,
		"attempts", d.Attempts, "error", msg)
	if disabled > 0 {
		s.logger.WarnContext(ctx, "webhook endpoint disabled", "endpoint_id", d.EndpointID, "reason", reason)
	}
}
