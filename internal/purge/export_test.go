package purge

import (
	"context"
	"log/slog"
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

// DoneRows is the queue of finished purges' rows, ending them with finish
// once gather returns.
type DoneRows struct{ d *doneRows }

// NewDoneRows returns a queue of rows that ends them with finish, letting
// them gather until gather returns.
func NewDoneRows(finish func(ctx context.Context, jobs []*ent.ObjectPurge) error, gather func()) DoneRows {
	d := newDoneRows(finish, slog.New(slog.DiscardHandler), 0)
	d.gather = gather
	return DoneRows{d}
}

// Add queues the row of a finished purge.
func (q DoneRows) Add(job *ent.ObjectPurge) { q.d.add(job) }

// Wait returns once every row queued is ended.
func (q DoneRows) Wait() { q.d.wait() }

// InsertOne writes one planned purge as ScheduleFor writes a single
// delete's.
func (p *Purger) InsertOne(ctx context.Context, tx *ent.Tx, job *ent.ObjectPurge) error {
	return p.insertOne(ctx, tx, job)
}

// CreateBulk writes planned purges through Ent, as ScheduleFor writes a
// batch's.
func CreateBulk(ctx context.Context, tx *ent.Tx, planned []*ent.ObjectPurge) ([]*ent.ObjectPurge, error) {
	return createBulk(ctx, tx, planned)
}

// SharedWaiting counts the inline removals waiting for a shared request.
func (p *Purger) SharedWaiting() int {
	p.shared.mu.Lock()
	defer p.shared.mu.Unlock()
	return len(p.shared.pending)
}
