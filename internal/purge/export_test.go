package purge

import (
	"context"
	"time"

	"github.com/safedelete/uploads/ent"
)

// The purger's fixed behaviour, for the tests to state their expectations
// in its own terms rather than in copied numbers.
const (
	Lease           = lease
	MinBackoff      = minBackoff
	BatchSize       = batchSize
	OutageThreshold = outageThreshold
)

// RunTicking is Run with the poll interval's ticks sent on tick, calling
// passed after each pass.
func (p *Purger) RunTicking(ctx context.Context, tick <-chan time.Time, passed func()) {
	p.run(ctx, tick, nil, passed)
}

// EndInlinePause lets inline clean-ups run again at once, as they do
// inlinePause after S3 let one run out of the inline timeout.
func (p *Purger) EndInlinePause() { p.inline.until.Store(0) }

// Finish records jobs' objects gone, as the purger does once S3 removed
// them.
func (p *Purger) Finish(ctx context.Context, jobs []*ent.ObjectPurge) error {
	return p.finish(ctx, jobs)
}
