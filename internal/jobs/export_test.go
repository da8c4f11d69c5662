package jobs

import "context"

// SetBeforeBatch makes j call f before it reads each batch of a job, with
// the job's id and the claim's number.
func SetBeforeBatch(j *Jobs, f func(ctx context.Context, jobID string, claim int) error) {
	j.beforeBatch = f
}
