package purge

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/queue"
	"github.com/safedelete/uploads/internal/tracing"
)

// outageThreshold is how many purges a pass tries first, one by one: if
// all of them fail, S3 is most likely down, and the rest stay due
// (unclaimed) for the next pass instead of each being claimed, failed and
// pushed back.
const outageThreshold = 3

// RunOnce claims the purges that are due, up to batchSize, and attempts
// them: the first few one by one, then the rest as one batch. It returns how
// many it attempted and how many objects were purged.
func (p *Purger) RunOnce(ctx context.Context) (attempted, purged int, err error) {
	claimed, err := p.claim(ctx, outageThreshold)
	if err != nil {
		return 0, 0, err
	}
	// The purger is the retry loop, with backoff between attempts: the S3
	// client does not retry as well (objectstore's Once), one try each.
	for _, job := range claimed {
		attempted++
		attemptCtx, cancel := context.WithTimeout(ctx, p.attemptTimeout())
		attemptCtx, span := p.opts.Tracer.Resume(attemptCtx, job.Traceparent, "purge")
		if p.Attempt(attemptCtx, job) == nil {
			purged++
		}
		span.End()
		cancel()
	}
	if len(claimed) < outageThreshold {
		return attempted, purged, nil // none left due
	}
	if purged == 0 {
		return attempted, purged, nil // S3 is most likely down: the rest stay due, unclaimed
	}
	if claimed, err = p.claim(ctx, batchSize-outageThreshold); err != nil || len(claimed) == 0 {
		return attempted, purged, err
	}
	attempted += len(claimed)
	// Within the lease, which the claim just began.
	batchCtx, cancel := context.WithTimeout(ctx, lease/2)
	defer cancel()
	batchCtx, span := p.resumeBatch(batchCtx, claimed)
	defer span.End()
	purged += p.AttemptBatch(batchCtx, claimed)
	return attempted, purged, nil
}

// claim takes up to n of the purges due now, the oldest first, for one
// lease (see queue.Claim), and returns them in the order they were queued.
func (p *Purger) claim(ctx context.Context, n int) ([]*ent.ObjectPurge, error) {
	now := time.Now()
	claimed, err := queue.Claim[*ent.ObjectPurge](ctx, p.client, queue.Batch{
		Table: objectpurge.Table, Limit: n, Now: now, LeaseEnd: now.Add(lease), Returning: objectpurge.Columns,
	})
	if err != nil {
		return nil, fmt.Errorf("claim purges: %w", err)
	}
	slices.SortFunc(claimed, func(a, b *ent.ObjectPurge) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// attemptTimeout keeps one S3 call well inside the lease.
func (p *Purger) attemptTimeout() time.Duration {
	return min(lease/2, 10*time.Second)
}

// QueueKind names purges in the queue's wake-ups.
const QueueKind = "purge"

// Run purges due objects every PollInterval, and whenever wake receives
// (a purge was made due now: see queue.Queue.WakeOnDue), until ctx is
// cancelled. After a full batch that went well it goes on at once: a
// backlog (after an outage) drains as fast as S3 allows.
func (p *Purger) Run(ctx context.Context, wake <-chan struct{}) {
	ticker := time.NewTicker(p.opts.PollInterval)
	defer ticker.Stop()
	p.run(ctx, ticker.C, wake, func() {})
}

// run is Run's loop, waiting for tick or wake between passes; passed is
// called after each pass (the tests' view of the loop).
func (p *Purger) run(ctx context.Context, tick <-chan time.Time, wake <-chan struct{}, passed func()) {
	for {
		attempted, purged, err := p.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger.ErrorContext(ctx, "purge pass failed", "error", err)
		}
		passed()
		if err == nil && attempted == batchSize && purged == attempted {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-wake:
		}
	}
}

// QueueStats returns the purge backlog, for the metrics: how many purges
// are overdue (due now, or failed and waiting out their backoff) and how
// long the one due longest has been due (since its scheduled time, or the
// end of its last backoff; 0 if none is due). Purges that are not due yet
// are not counted: those waiting out the trash window (DELETE_RETENTION),
// those of uploads that may still be storing, and those claimed for their
// first attempt. So the figures stay near zero while the purger keeps up,
// and grow when it does not (S3 down, the purger stopped or too slow),
// rather than reading about DELETE_RETENTION whenever the trash is used.
func (p *Purger) QueueStats(ctx context.Context) (int, time.Duration, error) {
	now := time.Now()
	overdue, err := p.client.ObjectPurge.Query().
		Where(objectpurge.Or(objectpurge.NextAttemptAtLTE(now), objectpurge.LastErrorNEQ(""))).
		Count(ctx)
	if err != nil || overdue == 0 {
		return overdue, 0, err
	}
	oldest, err := p.client.ObjectPurge.Query().
		Where(objectpurge.NextAttemptAtLTE(now)).
		Order(objectpurge.ByNextAttemptAt()).
		First(ctx)
	if ent.IsNotFound(err) {
		return overdue, 0, nil // all backing off, or claimed since the count
	}
	if err != nil {
		return 0, 0, err
	}
	return overdue, now.Sub(oldest.NextAttemptAt), nil
}

// resumeBatch starts the span of a batch of purges that many requests
// queued: in the trace of the first, linked to the others'.
func (p *Purger) resumeBatch(ctx context.Context, jobs []*ent.ObjectPurge) (context.Context, trace.Span) {
	if p.opts.Tracer == nil {
		return p.opts.Tracer.Start(ctx, "")
	}
	var links []trace.Link
	for _, job := range jobs[1:] {
		if sc := tracing.SpanContext(job.Traceparent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := p.opts.Tracer.Resume(ctx, jobs[0].Traceparent, "purge batch", trace.WithLinks(links...))
	span.SetAttributes(attribute.Int("purge.count", len(jobs)))
	return ctx, span
}
