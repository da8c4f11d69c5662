// Package graph is the GraphQL API and the home of the service's rules:
// who may delete what, how a delete happens, and how objects are stored.
// The REST shim calls the same resolvers.
package graph

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/objectlock"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/tracing"
	"github.com/safedelete/uploads/internal/viewer"
	"github.com/safedelete/uploads/internal/webhook"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	client  *ent.Client
	store   *objectstore.Store
	purger  *purge.Purger
	logger  *slog.Logger
	options Options
	// deletes commits concurrent deletes' transactions together (SQLite).
	deletes *database.Group
	// jobs runs deletion jobs, deleting through this resolver.
	jobs *jobs.Jobs
	// ownedOne is the ownership check of a single delete (ownedAmong),
	// the hot path, prepared.
	ownedOne *database.Statement

	// afterRead, when set (by tests only), runs in DeleteOwned between the
	// read and the delete's transaction, so that a test can hold two
	// deletes of one upload there and make them race every run, or hold
	// one until its operation's deadline (ctx is the delete's).
	afterRead func(ctx context.Context)
	// beforeTakeBack, when set (by tests only), runs in restoreUpload
	// between its read of the trash entry and taking back the purge, so
	// that a test can have a purger claim the purge there.
	beforeTakeBack func()
}

// Options are the resolvers' settings, all required.
type Options struct {
	MaxUploadSize int64         // bytes
	UploadTimeout time.Duration // longest time storing one file may take
	// DeleteRetention is how long a user's deleted upload can be restored
	// (its object kept); 0 purges at once.
	DeleteRetention time.Duration
	// WebhookSealer seals the signing secrets of webhook endpoints.
	WebhookSealer func() (*webhook.Sealer, error)
	// WebhookAllowHTTP accepts http:// endpoints, not only https://.
	WebhookAllowHTTP bool
	Metrics          *metrics.Metrics
	// Commits is the commit group deletes share (database.Group: one
	// commit for concurrent ones on SQLite); nil: a group of their own.
	Commits *database.Group
	// Jobs are the settings of deletion jobs (package jobs).
	Jobs jobs.Options
	// Events feeds the subscriptions; nil serves none.
	Events *events.Feed
	// Receipts issues deletion receipts; nil issues none.
	Receipts *receipt.Issuer
	// LegalHolds mirrors holds to the bucket's Object Lock: an upload of a
	// held owner is noted as it is stored. nil mirrors nothing.
	LegalHolds *objectlock.Mirror
	// Tracer traces each batch of a multi-batch delete (a deletion job's);
	// nil traces none.
	Tracer *tracing.Tracer
}

// NewResolver returns the root resolver.
func NewResolver(client *ent.Client, store *objectstore.Store, purger *purge.Purger, logger *slog.Logger, opts Options) *Resolver {
	r := &Resolver{client: client, store: store, purger: purger, logger: logger, options: opts,
		deletes:  cmp.Or(opts.Commits, database.NewGroup(client)),
		ownedOne: database.Prepare(client, ownedOneQuery())}
	jobOptions := opts.Jobs
	jobOptions.Receipts = cmp.Or(jobOptions.Receipts, opts.Receipts)
	r.jobs = jobs.New(client, r, logger, jobOptions)
	return r
}

// Events is the feed of the subscriptions; nil when none are served.
func (r *Resolver) Events() *events.Feed { return r.options.Events }

// MaxUploadSize is the largest file uploadFile accepts.
func (r *Resolver) MaxUploadSize() int64 { return r.options.MaxUploadSize }

// requireViewer returns the caller, whatever its credential may do,
// ErrUnauthorized, or (when the credentials could not be checked) an
// internal error.
func requireViewer(ctx context.Context) (viewer.Viewer, error) {
	v, err := viewer.FromContext(ctx)
	switch {
	case err == viewer.ErrAnonymous:
		return viewer.Viewer{}, ErrUnauthorized
	case err != nil:
		return viewer.Viewer{}, err
	}
	return v, nil
}

// requireScope is requireViewer for a field that needs the scope need: a
// caller whose credential lacks it gets Forbidden, before anything is
// looked up, so the answer says nothing about what exists.
func requireScope(ctx context.Context, need scope.Scope) (viewer.Viewer, error) {
	v, err := requireViewer(ctx)
	if err == nil && !v.Scopes.Has(need) {
		return viewer.Viewer{}, Forbidden(need)
	}
	return v, err
}
