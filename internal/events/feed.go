// Package events pushes each user's upload changes to their open
// subscriptions as the changes commit, on whichever instance they happen.
// Its one source is the audit trail (internal/audit), written in the
// transaction of each change: what it reads has committed, and a change
// that rolled back left nothing to read. One Feed per process reads the
// trail after the last event it delivered and fans the new events out to
// the subscriptions of their owners; it is woken by NOTIFY on PostgreSQL
// (a trigger on audit_events sends one at each commit that wrote events),
// by this process's commits on SQLite, and polls as a fallback. With no
// subscription open, it reads nothing.
//
// On PostgreSQL an event's id is taken when its row is inserted, not when
// it commits: a transaction holding id 10 may commit after one holding 11.
// The feed therefore delivers the events it read only once a later
// reading finds that no transaction that may have been in flight at theirs
// still writes to audit_events (pg_locks), so that events reach
// subscribers in id order and a subscriber that resumes after the last id
// it saw misses none (fence.go).
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/database"
)

// QueueKind is the kind of the queue's wake-ups (internal/queue) that the
// audit trail's trigger sends on PostgreSQL.
const QueueKind = "audit"

// Defaults of Options, and of the settings that set them.
const (
	// DefaultPerCredential is SUBSCRIPTIONS_PER_CREDENTIAL's default.
	DefaultPerCredential = 20
	// DefaultBuffer is how many events a subscription may lag behind.
	DefaultBuffer = 256
	// DefaultPollInterval is the fallback poll while subscriptions are open.
	DefaultPollInterval = time.Second
	// DefaultRecheckInterval is how often the API keys of open
	// subscriptions are checked for revocation.
	DefaultRecheckInterval = 2 * time.Second
	// DefaultFenceTimeout bounds how long a transaction left open holds
	// back the events of others (PostgreSQL).
	DefaultFenceTimeout = 30 * time.Second
)

// pageSize is how many events one read takes.
const pageSize = 500

// The reasons a subscription is refused or ends. Package graph gives each
// its public message.
var (
	// ErrTooMany: the credential has Options.PerCredential subscriptions open.
	ErrTooMany = errors.New("events: too many subscriptions for this credential")
	// ErrSlowReader: the subscriber fell Options.Buffer events behind.
	ErrSlowReader = errors.New("events: the subscriber fell too far behind")
	// ErrCredentialEnded: the subscription's API key was revoked or
	// deleted, or its key or token expired.
	ErrCredentialEnded = errors.New("events: the credential was revoked or expired")
	// ErrShutdown: the server is shutting down.
	ErrShutdown = errors.New("events: the server is shutting down")
)

// Options are the feed's settings; zero values take the defaults.
type Options struct {
	PerCredential   int
	Buffer          int
	PollInterval    time.Duration
	RecheckInterval time.Duration
	FenceTimeout    time.Duration
}

// Feed is the process's one reader of the audit trail for subscriptions.
type Feed struct {
	client   *ent.Client
	postgres bool
	logger   *slog.Logger
	opts     Options
	wakeups  <-chan struct{} // NOTIFYs of commits (PostgreSQL)
	commits  <-chan struct{} // this process's commits (SQLite)
	done     chan struct{}   // closed by Close
	life     context.Context // the reader's; ends with Close
	stop     context.CancelFunc
	reads    atomic.Int64 // readings of the trail done, for tests

	mu            sync.Mutex
	closed        bool
	started       bool // horizon is known: subscriptions are open, a reader runs
	generation    int  // of the reader that runs
	horizon       int  // every event up to it is delivered, or will never be
	fence         *fence
	owners        map[string]map[*Subscription]struct{}
	perCredential map[string]int
	lastRecheck   time.Time
}

// New returns the feed of client's audit trail, woken by wakeups (the
// queue's of QueueKind) besides this process's commits and its poll. It
// starts a reader with the first subscription and stops it with the last.
func New(client *ent.Client, wakeups <-chan struct{}, logger *slog.Logger, opts Options) *Feed {
	if opts.PerCredential <= 0 {
		opts.PerCredential = DefaultPerCredential
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RecheckInterval <= 0 {
		opts.RecheckInterval = DefaultRecheckInterval
	}
	if opts.FenceTimeout <= 0 {
		opts.FenceTimeout = DefaultFenceTimeout
	}
	life, stop := context.WithCancel(context.Background())
	return &Feed{
		client: client, postgres: database.Dialect(client) == dialect.Postgres, logger: logger, opts: opts,
		wakeups: wakeups, commits: database.Commits(client), done: make(chan struct{}), life: life, stop: stop,
		owners: map[string]map[*Subscription]struct{}{}, perCredential: map[string]int{},
	}
}

// PerCredential is how many subscriptions one credential may hold open.
func (f *Feed) PerCredential() int { return f.opts.PerCredential }

// Done is closed when the feed closes: streams end with the server.
func (f *Feed) Done() <-chan struct{} { return f.done }

// Close ends every subscription with ErrShutdown and refuses new ones.
// The server calls it when it begins to shut down, so that streams end
// cleanly instead of holding the shutdown until its timeout.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.done)
	f.stop()
	for _, subs := range f.owners {
		for s := range subs {
			f.endLocked(s, ErrShutdown)
		}
	}
}

// run reads the trail while subscriptions are open (as long as its
// generation's subscriptions last): at once, then at each wake-up, each
// commit of this process (SQLite), and every PollInterval.
func (f *Feed) run(generation int) {
	ctx := f.life
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wakeups:
		case <-f.commits:
		case <-timer.C:
		}
		if !f.runs(generation) {
			return
		}
		next, err := f.readOnce(ctx)
		if err != nil && ctx.Err() == nil {
			f.logger.WarnContext(ctx, "events: reading the audit trail failed; trying again", "error", err)
			next = f.opts.PollInterval
		}
		if err := f.recheckIfDue(ctx); err != nil && ctx.Err() == nil {
			f.logger.WarnContext(ctx, "events: checking the subscriptions' keys failed; trying again", "error", err)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// runs reports whether the reader of generation is still the one to run.
func (f *Feed) runs(generation int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started && f.generation == generation
}

// readOnce reads the events after the horizon and delivers those that are
// final; it returns when to read next.
func (f *Feed) readOnce(ctx context.Context) (time.Duration, error) {
	for {
		f.mu.Lock()
		after, pending := f.horizon, f.fence
		f.mu.Unlock()
		read, err := f.read(ctx, after)
		f.reads.Add(1)
		if err != nil {
			return 0, err
		}
		now := time.Now()
		upTo, nextFence, forced := settle(read, pending, f.postgres, now, f.opts.FenceTimeout)
		if f.logger.Enabled(ctx, slog.LevelDebug) {
			first, last := 0, 0
			if n := len(read.events); n > 0 {
				first, last = read.events[0].ID, read.events[n-1].ID
			}
			f.logger.DebugContext(ctx, "events: read", "after", after, "first", first, "last", last,
				"in_flight", fmt.Sprint(read.inFlight), "writers", fmt.Sprint(read.writers),
				"fence", fmt.Sprint(pending), "up_to", upTo, "next_fence", fmt.Sprint(nextFence))
		}
		if forced {
			f.logger.WarnContext(ctx, "events: a transaction stayed open past the fence timeout; delivering without waiting for it",
				"timeout", f.opts.FenceTimeout)
		}
		f.mu.Lock()
		if f.started && f.horizon == after { // not restarted meanwhile
			f.deliverLocked(read.events, upTo)
			f.fence = nextFence
		}
		f.mu.Unlock()
		switch {
		case nextFence != nil:
			return nextFence.retry(now), nil
		case len(read.events) < pageSize:
			return f.opts.PollInterval, nil
		}
	}
}

// deliverLocked hands each event up to upTo to its owner's subscriptions,
// in id order, and moves the horizon to upTo.
func (f *Feed) deliverLocked(events []*ent.AuditEvent, upTo int) {
	for _, e := range events {
		if e.ID > upTo {
			break
		}
		for s := range f.owners[e.OwnerID] {
			if s.quiet || e.ID <= s.from {
				continue
			}
			select {
			case s.live <- e:
			default:
				f.endLocked(s, ErrSlowReader)
			}
		}
	}
	if upTo > f.horizon {
		f.horizon = upTo
	}
}

// Subscriber is who subscribes: the viewer's user and credential.
type Subscriber struct {
	OwnerID string
	// Credential names the credential (viewer.Credential), for the limit.
	Credential string
	// APIKeyID is the API key to check for revocation; empty for a token.
	APIKeyID string
	// Expires ends the subscription when it passes; zero for never.
	Expires time.Time
	// Quiet: the subscription is given no events. It holds a place (the
	// limit per credential) and ends as any other does (revocation, expiry,
	// shutdown): the stream of something else, a deletion job's.
	Quiet bool
}

// Subscription is one open stream of an owner's events.
type Subscription struct {
	feed       *Feed
	owner      string
	credential string
	apiKeyID   string
	from       int // live events up to it are skipped: catch-up sends them
	catchUp    struct{ after, upTo int }
	live       chan *ent.AuditEvent
	ended      chan struct{}
	err        error // why it ended; set before ended closes
	expiry     *time.Timer
	quiet      bool
}

// Subscribe opens a subscription to sub's events: those after the event
// id after when given (read from the trail first: what a reconnecting
// client missed), otherwise those committed from now on. It refuses a
// credential that has PerCredential open with ErrTooMany.
func (f *Feed) Subscribe(ctx context.Context, sub Subscriber, after *int) (*Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrShutdown
	}
	if f.perCredential[sub.Credential] >= f.opts.PerCredential {
		return nil, ErrTooMany
	}
	if !f.started {
		// The first subscription starts the feed where the trail is final.
		f.mu.Unlock()
		end, err := f.trailEnd(ctx)
		f.mu.Lock()
		switch {
		case err != nil:
			return nil, err
		case f.closed:
			return nil, ErrShutdown
		case f.perCredential[sub.Credential] >= f.opts.PerCredential:
			return nil, ErrTooMany
		case !f.started:
			f.started, f.horizon, f.fence, f.lastRecheck = true, end, nil, time.Now()
			f.generation++
			go f.run(f.generation)
		}
	}
	s := &Subscription{
		feed: f, owner: sub.OwnerID, credential: sub.Credential, apiKeyID: sub.APIKeyID,
		from: f.horizon, live: make(chan *ent.AuditEvent, f.opts.Buffer), ended: make(chan struct{}), quiet: sub.Quiet,
	}
	if after != nil {
		if *after < f.horizon {
			s.catchUp.after, s.catchUp.upTo = *after, f.horizon
		} else {
			s.from = *after
		}
	}
	if f.owners[sub.OwnerID] == nil {
		f.owners[sub.OwnerID] = map[*Subscription]struct{}{}
	}
	f.owners[sub.OwnerID][s] = struct{}{}
	f.perCredential[sub.Credential]++
	if !sub.Expires.IsZero() {
		s.expiry = time.AfterFunc(time.Until(sub.Expires), func() { s.end(ErrCredentialEnded) })
	}
	return s, nil
}

// Events returns the subscription's events, in id order, until ctx ends
// or the subscription does (then Err says why); it closes the
// subscription when it returns.
func (s *Subscription) Events(ctx context.Context) <-chan *ent.AuditEvent {
	out := make(chan *ent.AuditEvent)
	send := func(e *ent.AuditEvent) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
		case <-s.ended:
		}
		return false
	}
	go func() {
		defer close(out)
		defer s.Close()
		for after := s.catchUp.after; after < s.catchUp.upTo; {
			page, err := s.feed.client.AuditEvent.Query().
				Where(auditevent.OwnerID(s.owner), auditevent.IDGT(after), auditevent.IDLTE(s.catchUp.upTo)).
				Order(ent.Asc(auditevent.FieldID)).Limit(pageSize).All(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.feed.logger.ErrorContext(ctx, "events: reading missed events", "error", err)
					s.end(err)
				}
				return
			}
			for _, e := range page {
				if !send(e) {
					return
				}
			}
			if len(page) < pageSize {
				break
			}
			after = page[len(page)-1].ID
		}
		for {
			select {
			case e := <-s.live:
				if !send(e) {
					return
				}
			case <-s.ended:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Err is why the subscription ended: nil when its reader stopped it.
func (s *Subscription) Err() error {
	select {
	case <-s.ended:
		return s.err
	default:
		return nil
	}
}

// Ended is closed once the subscription ends (Err says why).
func (s *Subscription) Ended() <-chan struct{} { return s.ended }

// Close ends the subscription and frees its place.
func (s *Subscription) Close() { s.end(nil) }

func (s *Subscription) end(err error) {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	s.feed.endLocked(s, err)
}

func (f *Feed) endLocked(s *Subscription, err error) {
	select {
	case <-s.ended:
		return
	default:
	}
	s.err = err
	close(s.ended)
	if s.expiry != nil {
		s.expiry.Stop()
	}
	delete(f.owners[s.owner], s)
	if len(f.owners[s.owner]) == 0 {
		delete(f.owners, s.owner)
	}
	if f.perCredential[s.credential]--; f.perCredential[s.credential] <= 0 {
		delete(f.perCredential, s.credential)
	}
	if len(f.owners) == 0 {
		f.started = false // nothing to read for: the next subscription starts anew
	}
}

// recheckIfDue ends the subscriptions whose API key was revoked or deleted
// since they opened: one query for every key with subscriptions open,
// every RecheckInterval. (Expiry needs no query: a timer ends them.)
func (f *Feed) recheckIfDue(ctx context.Context) error {
	f.mu.Lock()
	if time.Since(f.lastRecheck) < f.opts.RecheckInterval {
		f.mu.Unlock()
		return nil
	}
	f.lastRecheck = time.Now()
	keys := map[string]bool{}
	for _, subs := range f.owners {
		for s := range subs {
			if s.apiKeyID != "" {
				keys[s.apiKeyID] = false
			}
		}
	}
	f.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	live, err := f.client.APIKey.Query().Where(apikey.IDIn(ids...), apikey.RevokedAtIsNil()).IDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range live {
		keys[id] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, subs := range f.owners {
		for s := range subs {
			if s.apiKeyID != "" && !keys[s.apiKeyID] {
				if _, checked := keys[s.apiKeyID]; checked {
					f.endLocked(s, ErrCredentialEnded)
				}
			}
		}
	}
	return nil
}
