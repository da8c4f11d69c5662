package purge

import (
	"context"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/objectstore"
)

// InlineContext bounds an S3 clean-up made on a caller's behalf: by the
// inline timeout, detached from the caller's cancellation (a caller hanging
// up must not cut it short), and with a single try, so that when S3 is down
// the caller gets its answer at once and the background loop retries.
// Under WithRequestBudget, every clean-up of the request shares one inline
// timeout: once it is spent, the context returned is already done.
func (p *Purger) InlineContext(ctx context.Context) (context.Context, context.CancelFunc) {
	timeout := p.opts.InlineTimeout
	if b, ok := ctx.Value(budgetKey{}).(*budget); ok {
		timeout = b.remaining(timeout)
	}
	return context.WithTimeout(objectstore.WithoutRetries(context.WithoutCancel(ctx)), timeout)
}

// AttemptInline makes the attempt right after a delete, within
// InlineContext: one purge as one Attempt, several as one batch
// (AttemptBatch). When the request's budget is spent it does not try: the
// purges stay due for the background loop, untouched. It returns how many
// objects it purged.
func (p *Purger) AttemptInline(ctx context.Context, jobs ...*ent.ObjectPurge) int {
	if len(jobs) == 0 {
		return 0
	}
	ctx, cancel := p.InlineContext(ctx)
	defer cancel()
	if ctx.Err() != nil {
		p.dueNow(jobs) // the request's budget is spent: the background loop takes them
		return 0
	}
	if len(jobs) == 1 {
		if p.Attempt(ctx, jobs[0]) != nil {
			return 0
		}
		return 1
	}
	return p.AttemptBatch(ctx, jobs)
}

type budgetKey struct{}

// budget is one request's time for inline clean-ups, started by the first.
type budget struct {
	mu       sync.Mutex
	deadline time.Time
}

func (b *budget) remaining(total time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(total)
	}
	return time.Until(b.deadline)
}

// WithRequestBudget makes every inline clean-up under ctx share one inline
// timeout, so that a request running many deletes (aliased mutations) while
// S3 is slow answers within that time, not one timeout per delete; what
// does not fit is left to the background loop.
func WithRequestBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, budgetKey{}, &budget{})
}

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
