package purge

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
)

// InlineContext bounds an S3 clean-up made on a caller's behalf: by the
// inline timeout, and detached from the caller's cancellation (a caller
// hanging up must not cut it short). The purger's store tries S3 once, so
// that when S3 is down the caller gets its answer at once and the
// background loop retries.
//
// When S3 lets a clean-up run out of the inline timeout, inline clean-ups
// pause for inlinePause: within it, the context returned is already done.
// A request running many deletes (aliased mutations) while S3 hangs thus
// waits out one inline timeout, not one per delete, and so do the requests
// that follow it. Call the CancelFunc as soon as the clean-up is over: it
// is what sees that the time ran out.
func (p *Purger) InlineContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := p.opts.InlineTimeout
	if p.inline.paused() {
		timeout = 0
	}
	inlineCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	return inlineCtx, func() {
		if timeout > 0 && errors.Is(inlineCtx.Err(), context.DeadlineExceeded) {
			p.inline.pause()
		}
		cancel()
	}
}

// AttemptInline makes the attempt right after a delete, within
// InlineContext: one purge as one Attempt, whose removal goes in one
// request with those of other deletes that arrive meanwhile (shared.go),
// several as one batch (AttemptBatch). While inline clean-ups pause it does
// not try: the purges stay due for the background loop, untouched. It
// returns how many objects it purged.
func (p *Purger) AttemptInline(ctx context.Context, jobs ...*ent.ObjectPurge) int {
	if len(jobs) == 0 {
		return 0
	}
	ctx, cancel := p.InlineContext(ctx)
	defer cancel()
	ctx, span := p.opts.Tracer.Start(ctx, "purge")
	defer span.End()
	if ctx.Err() != nil {
		p.dueNow(jobs) // inline clean-ups pause: the background loop takes them
		return 0
	}
	if len(jobs) == 1 {
		if p.attempt(ctx, jobs[0], true) != nil {
			return 0
		}
		return 1
	}
	return p.AttemptBatch(ctx, jobs)
}

// inlinePause is how long inline clean-ups are skipped after S3 let one
// run out of the inline timeout. Far longer than the rest of a request
// takes (its deletes after the first are database work only), and short
// enough that, once S3 answers again, deletes soon remove their objects
// themselves; in between, the background loop does, within a poll
// interval.
const inlinePause = 10 * time.Second

// inlineBreaker is when inline clean-ups resume; the zero value lets them
// run.
type inlineBreaker struct {
	until atomic.Int64 // Unix nanoseconds
}

func (b *inlineBreaker) paused() bool { return time.Now().UnixNano() < b.until.Load() }

func (b *inlineBreaker) pause() { b.until.Store(time.Now().Add(inlinePause).UnixNano()) }

// dueNow makes purges due at once, for the background loop's next pass,
// rather than after the inline attempt they will not get.
func (p *Purger) dueNow(jobs []*ent.ObjectPurge) {
	ids := make([]int, len(jobs))
	for i, job := range jobs {
		ids[i] = job.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.client.ObjectPurge.Update().Where(objectpurge.IDIn(ids...)).SetNextAttemptAt(time.Now()).Exec(ctx); err != nil {
		p.logger.WarnContext(ctx, "make purges due", "purges", len(ids), "error", err) // they are due soon anyway
	}
}
