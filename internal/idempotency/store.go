package idempotency

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/idempotencykey"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/scope"
)

// Lease is how long an instance holds a key for a request it runs without
// renewing it; it renews it every Lease/3 while the request runs. A key
// whose instance died is free again at most Lease after its last renewal.
const Lease = 10 * time.Second

// Refusals of a key: the request is not run.
var (
	// ErrReused is the key of an earlier request that was not this one.
	ErrReused = errors.New("Idempotency-Key reused with a different request")
	// ErrInUse is the key of a request still running.
	ErrInUse = errors.New("A request with this Idempotency-Key is in progress")
	// ErrNarrower is a stored answer asked for by a credential that lacks a
	// scope of the one whose request made it: a narrower credential of
	// the same user is not given what it could not have got itself.
	ErrNarrower = errors.New("This credential lacks a scope of the one that first sent this Idempotency-Key")
)

// Sealer encrypts stored answers, binding each to its key (webhook.Sealer).
type Sealer interface {
	Seal(associated string, plaintext []byte) []byte
	Open(associated string, sealed []byte) ([]byte, error)
}

// Metrics counts what became of keyed requests, by outcome ("claimed",
// "replayed", "reused", "in_use", "narrower", "invalid", "stored",
// "released"), and
// the stored answers pruned.
type Metrics interface {
	Idempotency(outcome string)
	IdempotencyPruned(n int)
}

// Options configure a Store.
type Options struct {
	// Retention is how long an answer is kept: the same key after it is a
	// new request.
	Retention time.Duration
	Metrics   Metrics
	// Lease overrides Lease (tests).
	Lease time.Duration
	// Commits, if set, shares the commits of taking keys and storing
	// answers with other writers' (on SQLite, one fsync for many).
	Commits *database.Group
}

// Store keeps keys and their answers in the database.
type Store struct {
	client *ent.Client
	sealer func() (Sealer, error)
	opts   Options
}

// New returns a Store of client's keys; sealer gives the key answers are
// sealed under (read on first use).
func New(client *ent.Client, sealer func() (Sealer, error), opts Options) *Store {
	if opts.Lease <= 0 {
		opts.Lease = Lease
	}
	return &Store{client: client, sealer: sealer, opts: opts}
}

func (s *Store) count(outcome string) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.Idempotency(outcome)
	}
}

// Fingerprint digests what makes two requests the same request.
func Fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p) // lengths: no two lists of parts digest alike
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Answer is a stored response.
type Answer struct {
	Status      int
	ContentType string
	Body        []byte
}

// Begin takes userID's key for the request of fingerprint, sent with a
// credential of scopes. It returns a Claim (run the request, then Finish or
// Release the claim), or the answer stored for the same request (replay
// it), or ErrReused, ErrInUse or ErrNarrower.
func (s *Store) Begin(ctx context.Context, userID string, scopes scope.Set, key, fingerprint string) (*Claim, *Answer, error) {
	var row *ent.IdempotencyKey
	var answer *Answer
	fresh := false
	holder := rand.Text() // this claim's, replaced by a takeover
	now := time.Now()
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		query, args := sql.Dialect(database.Dialect(s.client)).
			Insert(idempotencykey.Table).
			Columns(idempotencykey.FieldUserID, idempotencykey.FieldKey, idempotencykey.FieldFingerprint, idempotencykey.FieldHolder,
				idempotencykey.FieldLockedUntil, idempotencykey.FieldStatus, idempotencykey.FieldContentType, idempotencykey.FieldCreatedAt).
			Values(userID, key, fingerprint, holder, now.Add(s.opts.Lease), 0, "", now).
			OnConflict(sql.ConflictColumns(idempotencykey.FieldUserID, idempotencykey.FieldKey), sql.DoNothing()).
			Returning(idempotencykey.FieldID).
			Query()
		id, inserted, err := insertedID(ctx, tx, query, args)
		if err != nil {
			return fmt.Errorf("take idempotency key: %w", err)
		}
		if inserted { // taken: the row is what was just written
			row, fresh = &ent.IdempotencyKey{ID: id}, true
			return nil
		}
		if row, err = tx.IdempotencyKey.Query().
			Where(idempotencykey.UserID(userID), idempotencykey.Key(key)).
			Only(ctx); err != nil {
			return fmt.Errorf("read idempotency key: %w", err)
		}
		if s.opts.Retention > 0 && row.CreatedAt.Before(now.Add(-s.opts.Retention)) && row.LockedUntil.Before(now) {
			// Past its retention, not yet pruned: a new request.
			if err := tx.IdempotencyKey.DeleteOneID(row.ID).Exec(ctx); err != nil {
				return err
			}
			row, err = tx.IdempotencyKey.Create().
				SetUserID(userID).SetKey(key).SetFingerprint(fingerprint).SetHolder(holder).
				SetLockedUntil(now.Add(s.opts.Lease)).SetCreatedAt(now).
				Save(ctx)
			return err
		}
		if row.Fingerprint != fingerprint {
			return ErrReused
		}
		if row.Status != 0 {
			if !scopes.Covers(scope.FromNames(strings.Fields(row.Scopes))) {
				return ErrNarrower
			}
			answer = &Answer{Status: row.Status, ContentType: row.ContentType}
			if row.Body != nil {
				answer.Body = *row.Body
			}
			return nil
		}
		// Still running, or its instance died: taken over only once its
		// lease has lapsed, by one retry.
		taken, err := tx.IdempotencyKey.Update().
			Where(idempotencykey.ID(row.ID), idempotencykey.Status(0), idempotencykey.LockedUntilLT(now)).
			SetLockedUntil(now.Add(s.opts.Lease)).SetHolder(holder).
			Save(ctx)
		if err != nil {
			return err
		}
		if taken == 0 {
			return ErrInUse
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrReused):
		s.count("reused")
		return nil, nil, err
	case errors.Is(err, ErrInUse):
		s.count("in_use")
		return nil, nil, err
	case errors.Is(err, ErrNarrower):
		s.count("narrower")
		return nil, nil, err
	case err != nil:
		return nil, nil, err
	case answer != nil:
		body, err := s.open(userID, key, answer.Body)
		if err != nil {
			return nil, nil, err
		}
		answer.Body = body
		s.count("replayed")
		return nil, answer, nil
	}
	c := &Claim{store: s, id: row.ID, holder: holder, userID: userID, key: key, scopes: scopes, fresh: fresh, stop: make(chan struct{}), stopped: make(chan struct{})}
	if row.Effects != nil {
		c.effects = *row.Effects
	}
	go c.renew()
	s.count("claimed")
	return c, nil, nil
}

// insertedID runs an INSERT … ON CONFLICT DO NOTHING RETURNING id in tx,
// and returns the id, or false if the row was there already.
func insertedID(ctx context.Context, tx *ent.Tx, query string, args []any) (id int, inserted bool, err error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return 0, false, err
		}
		inserted = true
	}
	return id, inserted, rows.Err()
}

// inTx runs fn in a transaction, shared with others' if Commits is set.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) error {
	if s.opts.Commits != nil {
		return s.opts.Commits.Do(ctx, fn)
	}
	return database.WithTx(ctx, s.client, func(tx *ent.Tx) error { return fn(ctx, tx) })
}

// associated binds a sealed answer to its user and key.
func associated(userID, key string) string { return "idempotency:" + userID + ":" + key }

func (s *Store) open(userID, key string, sealed []byte) ([]byte, error) {
	sealer, err := s.sealer()
	if err != nil {
		return nil, err
	}
	return sealer.Open(associated(userID, key), sealed)
}

// Prune deletes the answers stored before cutoff (none of a request still
// running) and returns how many.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	pruned := 0
	for { // in chunks: no statement holds the write lock long
		ids, err := s.client.IdempotencyKey.Query().
			Where(idempotencykey.CreatedAtLT(cutoff), idempotencykey.LockedUntilLT(time.Now())).
			Limit(pruneChunk).
			IDs(ctx)
		if err != nil || len(ids) == 0 {
			return pruned, err
		}
		n, err := s.client.IdempotencyKey.Delete().Where(idempotencykey.IDIn(ids...)).Exec(ctx)
		pruned += n
		if n > 0 && s.opts.Metrics != nil {
			s.opts.Metrics.IdempotencyPruned(n)
		}
		if err != nil || len(ids) < pruneChunk {
			return pruned, err
		}
	}
}

// pruneChunk is how many answers one statement of Prune deletes.
const pruneChunk = 1000

// Retention is how long answers are kept (0: for ever).
func (s *Store) Retention() time.Duration { return s.opts.Retention }

// Claim is a key taken for a request that runs now.
type Claim struct {
	store       *Store
	id          int
	holder      string // written on the row while this claim holds it
	userID, key string
	scopes      scope.Set // the credential's, stored with the answer

	effects []byte // JSON: root field → what it did, as committed before the claim
	// fresh: the row was made for this claim, so it held no effects; until
	// the claim writes one, none needs reading.
	fresh  bool
	writes atomic.Int32

	// prediction is the answer the request gets once its effect commits,
	// sealed: written with the effect, in its transaction (Predict).
	prediction       *Answer
	sealedPrediction []byte
	answeredInTx     atomic.Bool

	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}
}

// renew extends the lease until the claim ends.
func (c *Claim) renew() {
	defer close(c.stopped)
	t := time.NewTicker(c.store.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.store.opts.Lease/3)
			_ = c.store.client.IdempotencyKey.Update().
				Where(c.held()).
				SetLockedUntil(time.Now().Add(c.store.opts.Lease)).
				Exec(ctx) // a missed renewal is retried at the next tick
			cancel()
		}
	}
}

func (c *Claim) end() {
	c.once.Do(func() { close(c.stop) })
	<-c.stopped
}

// ErrLost is a claim whose key another request took over once its lease
// lapsed (its instance stalled): it may write nothing more, its effect
// included.
var ErrLost = errors.New("idempotency key taken over by another request: its lease lapsed")

func lost(n int) error {
	if n == 0 {
		return ErrLost
	}
	return nil
}

// held is the row while this claim holds it, unanswered.
func (c *Claim) held() predicate.IdempotencyKey {
	return idempotencykey.And(idempotencykey.ID(c.id), idempotencykey.Holder(c.holder), idempotencykey.Status(0))
}

// Predict sets the answer the request gets once its effect commits (the
// REST delete's 200): it is stored with the effect, in the effect's
// transaction, so that no crash can leave the effect without its answer,
// and Finish has nothing left to write.
func (c *Claim) Predict(a Answer) error {
	sealer, err := c.store.sealer()
	if err != nil {
		return err
	}
	c.prediction, c.sealedPrediction = &a, sealer.Seal(associated(c.userID, c.key), a.Body)
	return nil
}

// settled reports whether a is the answer already stored with the effect.
func (c *Claim) settled(a Answer) bool {
	p := c.prediction
	return c.answeredInTx.Load() && p != nil && p.Status == a.Status && p.ContentType == a.ContentType && bytes.Equal(p.Body, a.Body)
}

// Finish stores the request's final answer and ends the claim.
func (c *Claim) Finish(ctx context.Context, a Answer) error {
	c.end()
	if c.settled(a) {
		c.store.count("stored")
		return nil
	}
	sealer, err := c.store.sealer()
	if err != nil {
		return err
	}
	sealed := sealer.Seal(associated(c.userID, c.key), a.Body)
	ctx = context.WithoutCancel(ctx) // the caller hanging up does not unmake the answer
	err = c.store.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		n, err := tx.IdempotencyKey.Update().
			Where(c.held()).
			SetStatus(a.Status).SetContentType(a.ContentType).SetBody(sealed).SetScopes(c.scopes.String()).
			SetLockedUntil(time.Now()).
			Save(ctx)
		return cmp.Or(err, lost(n))
	})
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	c.store.count("stored")
	return nil
}

// Release ends the claim without an answer: the next request with the key
// runs again (replaying the effects recorded so far).
func (c *Claim) Release(ctx context.Context) error {
	c.end()
	ctx = context.WithoutCancel(ctx)
	err := c.store.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		n, err := tx.IdempotencyKey.Update().
			Where(c.held()).
			SetLockedUntil(time.Now()).
			Save(ctx)
		if n == 0 && err == nil && c.answeredInTx.Load() {
			return nil // answered with its effect: nothing to free
		}
		return cmp.Or(err, lost(n))
	})
	c.store.count("released")
	return err
}
