package purge

import (
	"context"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
)

// AttemptBatch tries once to remove the objects of claimed purges, many per
// S3 request (DeleteObjects). Purges with a multipart upload to abort go
// one by one through Attempt. Each purge whose object S3 reports removed is done; each other
// one is rescheduled with backoff. It returns how many were done.
func (p *Purger) AttemptBatch(ctx context.Context, jobs []*ent.ObjectPurge) (purged int) {
	byBucket := map[string][]*ent.ObjectPurge{}
	for _, job := range jobs {
		byBucket[job.Bucket] = append(byBucket[job.Bucket], job)
	}
	for bucket, jobs := range byBucket {
		purged += p.attemptBucket(ctx, bucket, jobs)
	}
	return purged
}

// attemptBucket is AttemptBatch for the purges of one bucket.
func (p *Purger) attemptBucket(ctx context.Context, bucket string, jobs []*ent.ObjectPurge) (purged int) {
	var batch []*ent.ObjectPurge
	for _, job := range jobs {
		if job.AbortAllMultipart || job.MultipartUploadID != "" {
			if p.Attempt(ctx, job) == nil {
				purged++
			}
			continue
		}
		batch = append(batch, job)
	}
	if len(batch) == 0 {
		return purged
	}
	keys := make([]string, len(batch))
	for i, job := range batch {
		keys[i] = job.ObjectKey
	}
	failed := p.objects.DeleteKeys(ctx, bucket, keys)
	var done []*ent.ObjectPurge
	var retry []*ent.ObjectPurge
	for _, job := range batch {
		err := failed[job.ObjectKey]
		p.opts.Metrics.PurgeAttempt(err)
		if err != nil {
			retry = append(retry, job)
			p.refused(ctx, job, err)
		} else {
			done = append(done, job)
		}
	}
	if len(retry) > 0 {
		p.rescheduleAll(ctx, retry, failed[retry[0].ObjectKey])
	}
	if len(done) == 0 {
		return purged
	}
	// A failure only means the (idempotent) purges run again later.
	if err := p.finish(ctx, done); err != nil {
		p.logger.WarnContext(ctx, "finish purges", "purges", len(done), "error", err)
		return purged
	}
	p.logger.InfoContext(ctx, "objects purged", "bucket", bucket, "purged", len(done))
	return purged + len(done)
}

// rescheduleAll records failed attempts of many purges in one transaction
// (one commit, not one per purge: an outage fails whole batches) and logs
// them once.
func (p *Purger) rescheduleAll(ctx context.Context, jobs []*ent.ObjectPurge, example error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	msg := example.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	err := database.WithTx(ctx, p.client, func(tx *ent.Tx) error {
		for _, job := range jobs {
			err := tx.ObjectPurge.UpdateOneID(job.ID).
				SetNextAttemptAt(time.Now().Add(p.backoff(job.Attempts))).
				SetLastError(msg).
				Exec(ctx)
			if err != nil && !ent.IsNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The leases still expire, so the purges are retried anyway.
		p.logger.ErrorContext(ctx, "record purge failures", "purges", len(jobs), "error", err)
	}
	p.logger.WarnContext(ctx, "object purges failed; will retry", "failed", len(jobs), "error", example)
}
