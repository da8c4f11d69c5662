package purge

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/predicate"
)

// kept matches the purge of an upload in the trash: scheduled for later
// and never claimed (a claim counts an attempt). Once a purger has claimed
// it, the object may be going, so the upload can no longer come back.
func kept(uploadID string, now time.Time) []predicate.ObjectPurge {
	return []predicate.ObjectPurge{
		objectpurge.UploadID(uploadID),
		objectpurge.Attempts(0),
		objectpurge.NextAttemptAtGT(now),
	}
}

// Unschedule takes back, inside tx, the purge of an upload in the trash,
// so that it can be restored. It reports false when there is none to take
// back: the window closed, or a purger claimed it first. Whichever of a
// restore and a purger's claim commits first wins; the other finds nothing.
func (p *Purger) Unschedule(ctx context.Context, tx *ent.Tx, uploadID string) (bool, error) {
	n, err := tx.ObjectPurge.Delete().Where(kept(uploadID, time.Now())...).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("unschedule purge: %w", err)
	}
	return n > 0, nil
}

// Expedite claims, inside tx, the purge of an upload in the trash for an
// attempt right away (AttemptInline), as a purge after a delete is. It
// returns nil when there is none: the purge is already under way.
func (p *Purger) Expedite(ctx context.Context, tx *ent.Tx, uploadID string) (*ent.ObjectPurge, error) {
	now := time.Now()
	job, err := tx.ObjectPurge.Query().Where(kept(uploadID, now)...).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("expedite purge: %w", err)
	}
	n, err := tx.ObjectPurge.Update().
		Where(append(kept(uploadID, now), objectpurge.ID(job.ID))...).
		SetAttempts(1).
		SetNextAttemptAt(now.Add(2 * p.opts.InlineTimeout)).
		Save(ctx)
	if err != nil || n == 0 {
		return nil, err
	}
	job.Attempts, job.NextAttemptAt = 1, now.Add(2*p.opts.InlineTimeout)
	return job, nil
}
