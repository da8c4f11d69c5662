package graph

import (
	"context"
	"errors"

	"entgo.io/contrib/entgql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// The deletion job resolvers are thin: the rules (what a job deletes, its
// lease, cancelling) are package jobs'; the deletes are DeleteOwnedBatchesTx's.

// CodeTooManyDeletionJobs refuses a job to a user with jobs.MaxUnfinished
// queued or running.
const CodeTooManyDeletionJobs = "TOO_MANY_DELETION_JOBS"

// ErrJobNotFound is a deletion job that does not exist or is someone else's.
var ErrJobNotFound = &PublicError{Code: CodeNotFound, Message: "Deletion job not found"}

// Jobs returns the deletion jobs, which delete through r.
func (r *Resolver) Jobs() *jobs.Jobs { return r.jobs }

func (r *Resolver) startDeletionJob(ctx context.Context, where ent.UploadWhereInput, dryRun *bool) (*ent.DeletionJob, error) {
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	job, err := r.jobs.Start(ctx, jobs.Filter{
		OwnerID: v.UserID, Where: &where, DryRun: dryRun != nil && *dryRun, Actor: audit.Caller(ctx),
	})
	return job, r.jobError(ctx, "start deletion job", err)
}

func (r *Resolver) cancelDeletionJob(ctx context.Context, jobID string) (*ent.DeletionJob, error) {
	v, err := r.deleter(ctx, scope.UploadsDelete)
	if err != nil {
		return nil, err
	}
	job, err := r.jobs.Cancel(ctx, ids.Trim(jobID), v.UserID)
	return job, r.jobError(ctx, "cancel deletion job", err)
}

// deletionJobs is viewer.deletionJobs: the caller's jobs, newest first.
func (r *Resolver) deletionJobs(ctx context.Context, obj *ent.User, after *entgql.Cursor[string], first *int, before *entgql.Cursor[string], last *int) (*ent.DeletionJobConnection, error) {
	if _, err := requireJobReader(ctx); err != nil {
		return nil, err
	}
	first, err := boundedFirst(first, last)
	if err != nil {
		return nil, err
	}
	return r.client.DeletionJob.Query().
		Where(deletionjob.OwnerID(obj.ID)).
		Paginate(ctx, after, first, before, last, ent.WithDeletionJobOrder(&ent.DeletionJobOrder{
			Direction: entgql.OrderDirectionDesc,
			Field:     ent.DeletionJobOrderFieldCreatedAt,
		}))
}

// myJob is node(id:) of a deletion job: the caller's, or nil, whether it
// is missing or someone else's.
func (r *Resolver) myJob(ctx context.Context, jobID string) (*ent.DeletionJob, error) {
	v, err := requireJobReader(ctx)
	if err != nil {
		return nil, err
	}
	job, err := r.jobs.Get(ctx, jobID, v.UserID)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, nil
	}
	return job, err
}

// requireJobReader is requireScope for reading jobs: they tell of the
// caller's uploads, as viewer.uploads does.
func requireJobReader(ctx context.Context) (viewer.Viewer, error) {
	return requireScope(ctx, scope.UploadsRead)
}

// jobError maps package jobs' errors to the API's.
func (r *Resolver) jobError(ctx context.Context, what string, err error) error {
	var filter *jobs.FilterError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jobs.ErrNotFound):
		return ErrJobNotFound
	case errors.Is(err, jobs.ErrTooManyUnfinished):
		return &PublicError{Code: CodeTooManyDeletionJobs, Message: err.Error()}
	case errors.As(err, &filter):
		return &PublicError{Code: CodeBadUserInput, Message: filter.Error()}
	case timedOut(ctx):
		return ErrOperationTimeout
	default:
		return r.publicOr(ctx, what, err)
	}
}

// deletionJob is Subscription.deletionJob: the caller's job after each
// change, until its final state. It holds a place among the credential's
// subscriptions (a quiet one of the event feed), which also ends it when
// the credential does.
func (r *Resolver) deletionJob(ctx context.Context, jobID string) (<-chan *ent.DeletionJob, error) {
	v, err := requireJobReader(ctx)
	if err != nil {
		return nil, err
	}
	feed := r.options.Events
	if feed == nil {
		return nil, errors.New("subscriptions are not served: no event feed")
	}
	sub, err := feed.Subscribe(ctx, events.Subscriber{
		OwnerID: v.UserID, Credential: v.Credential(), APIKeyID: v.APIKeyID, Expires: v.Expires, Quiet: true,
	}, nil)
	if err != nil {
		return nil, subscriptionError(err, feed.PerCredential())
	}
	ctx, stop := context.WithCancel(ctx)
	states, err := r.jobs.Watch(ctx, ids.Trim(jobID), v.UserID)
	if err != nil {
		stop()
		sub.Close()
		return nil, r.jobError(ctx, "watch deletion job", err)
	}
	onStreamEnd(ctx, func() error { return subscriptionError(sub.Err(), feed.PerCredential()) })
	out := make(chan *ent.DeletionJob)
	go func() {
		defer close(out)
		defer sub.Close()
		defer stop()
		for {
			select {
			case job, ok := <-states:
				if !ok {
					return
				}
				select {
				case out <- job:
				case <-sub.Ended():
					return
				case <-ctx.Done():
					return
				}
			case <-sub.Ended():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
