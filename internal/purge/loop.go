package purge

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/database"
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
	now := time.Now()
	due, err := p.client.ObjectPurge.Query().
		Where(objectpurge.NextAttemptAtLTE(now)).
		Order(objectpurge.ByNextAttemptAt()).
		Limit(batchSize).
		All(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list due purges: %w", err)
	}
	probe, rest := due[:min(len(due), outageThreshold)], due[min(len(due), outageThreshold):]
	claimed, err := p.claim(ctx, probe, now)
	if err != nil {
		return 0, 0, err
	}
	// The purger is the retry loop, with backoff between attempts: the S3
	// client does not retry as well (objectstore's Once), one try each.
	for _, job := range claimed {
		attempted++
		attemptCtx, cancel := context.WithTimeout(ctx, p.attemptTimeout())
		if p.Attempt(attemptCtx, job) == nil {
			purged++
		}
		cancel()
	}
	if len(claimed) > 0 && purged == 0 {
		return attempted, purged, nil // S3 is most likely down
	}
	if claimed, err = p.claim(ctx, rest, now); err != nil || len(claimed) == 0 {
		return attempted, purged, err
	}
	attempted += len(claimed)
	// Within the lease, which the claims just began.
	batchCtx, cancel := context.WithTimeout(ctx, lease/2)
	defer cancel()
	purged += p.AttemptBatch(batchCtx, claimed)
	return attempted, purged, nil
}

// claim takes, in one transaction, each of the purges that is still due
// for one lease, and returns those it took: one that is not was claimed by
// another purger first.
func (p *Purger) claim(ctx context.Context, due []*ent.ObjectPurge, now time.Time) ([]*ent.ObjectPurge, error) {
	if len(due) == 0 {
		return nil, nil
	}
	var claimed []*ent.ObjectPurge
	err := database.WithTx(ctx, p.client, func(tx *ent.Tx) error {
		for _, job := range due {
			n, err := tx.ObjectPurge.Update().
				Where(objectpurge.ID(job.ID), objectpurge.NextAttemptAtLTE(now)).
				SetNextAttemptAt(now.Add(lease)).
				AddAttempts(1).
				Save(ctx)
			if err != nil {
				return err
			}
			if n == 1 {
				job.Attempts++
				claimed = append(claimed, job)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d purges: %w", len(due), err)
	}
	return claimed, nil
}

// attemptTimeout keeps one S3 call well inside the lease.
func (p *Purger) attemptTimeout() time.Duration {
	return min(lease/2, 10*time.Second)
}

// Run purges due objects every PollInterval until ctx is cancelled. After a
// full batch that went well it goes on at once: a backlog (after an
// outage) drains as fast as S3 allows.
func (p *Purger) Run(ctx context.Context) {
	ticker := time.NewTicker(p.opts.PollInterval)
	defer ticker.Stop()
	p.run(ctx, ticker.C, func() {})
}

// run is Run's loop, waiting for tick between passes; passed is called
// after each pass (the tests' view of the loop).
func (p *Purger) run(ctx context.Context, tick <-chan time.Time, passed func()) {
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
