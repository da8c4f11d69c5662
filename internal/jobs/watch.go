package jobs

import (
	"context"
	"time"

	"github.com/safedelete/uploads/ent"
)

// Watch returns a channel that yields ownerID's job jobID (AnyOwner:
// anyone's) as it is now, then again each time it changes (after each
// batch, on whichever instance runs it), and last in its final state
// (SUCCEEDED, FAILED or CANCELED), then closes. It also closes when ctx
// ends or the job can no longer be read (pruned, or its user erased); a
// reader slower than the job misses intermediate states, never the final
// one. The job is read again whenever this process changes it, and every
// PollInterval for changes made by other instances. A job that does not
// exist or is someone else's is ErrNotFound, before anything is sent.
func (j *Jobs) Watch(ctx context.Context, jobID, ownerID string) (<-chan *ent.DeletionJob, error) {
	job, err := j.Get(ctx, jobID, ownerID)
	if err != nil {
		return nil, err
	}
	out := make(chan *ent.DeletionJob)
	go func() {
		defer close(out)
		ticker := time.NewTicker(j.opts.PollInterval)
		defer ticker.Stop()
		var sent *ent.DeletionJob
		for {
			if sent == nil || changedSince(sent, job) {
				select {
				case out <- job:
					sent = job
				case <-ctx.Done():
					return
				}
			}
			if Finished(job) {
				return
			}
			changes := j.changes() // before the read: a change after it wakes the next
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			case <-changes:
			}
			if job, err = j.Get(ctx, jobID, ownerID); err != nil {
				if ctx.Err() == nil && err != ErrNotFound {
					j.logger.WarnContext(ctx, "watch deletion job", "job_id", jobID, "error", err)
				}
				return
			}
		}
	}()
	return out, nil
}

// changedSince reports whether a job read again differs from what was
// sent in what a watcher sees.
func changedSince(sent, now *ent.DeletionJob) bool {
	return sent.Status != now.Status || sent.DeletedCount != now.DeletedCount ||
		sent.FailedCount != now.FailedCount || sent.MatchedCount != now.MatchedCount ||
		(sent.StartedAt == nil) != (now.StartedAt == nil) || (sent.FinishedAt == nil) != (now.FinishedAt == nil)
}

// changes returns a channel closed at this process's next change of a job.
func (j *Jobs) changes() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.changed
}

// notify wakes this process's watchers: a job changed.
func (j *Jobs) notify() {
	j.mu.Lock()
	defer j.mu.Unlock()
	close(j.changed)
	j.changed = make(chan struct{})
}

// notifyAtCommit notifies once the transaction it is hooked to commits.
func (j *Jobs) notifyAtCommit(next ent.Committer) ent.Committer {
	return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
		err := next.Commit(ctx, tx)
		if err == nil {
			j.notify()
		}
		return err
	})
}
