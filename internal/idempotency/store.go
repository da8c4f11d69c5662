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

	"entgo.io/ent/dialect"
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
	// deferrable: the engine has one writer at a time and the service one
	// instance (SQLite), so a request whose answer is known before it runs
	// takes its key in this process and writes it only with its effect
	// (BeginDeferred).
	deferrable bool

	mu    sync.Mutex
	local map[string]string // deferred claims running here: user and key → fingerprint
	// taken asks whether a key has a row (BeginDeferred's one read).
	taken *database.Statement
}

// New returns a Store of client's keys; sealer gives the key answers are
// sealed under (read on first use).
func New(client *ent.Client, sealer func() (Sealer, error), opts Options) *Store {
	if opts.Lease <= 0 {
		opts.Lease = Lease
	}
	return &Store{
		client: client, sealer: sealer, opts: opts,
		deferrable: database.Dialect(client) == dialect.SQLite,
		local:      map[string]string{},
		taken: database.Prepare(client, // $n: PostgreSQL's placeholders are also SQLite's
			`SELECT 1 FROM "`+idempotencykey.Table+`" WHERE "`+idempotencykey.FieldUserID+`" = $1 AND "`+idempotencykey.FieldKey+`" = $2 LIMIT 1`),
	}
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
	if err := s.runningHere(userID, key, fingerprint); err != nil {
		return nil, nil, err
	}
	var row *ent.IdempotencyKey
	var answer *Answer
	fresh := false
	holder := rand.Text() // this claim's, replaced by a takeover
	now := time.Now()
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		id, inserted, err := s.insert(ctx, tx, []string{idempotencykey.FieldUserID, idempotencykey.FieldKey, idempotencykey.FieldFingerprint, idempotencykey.FieldHolder,
			idempotencykey.FieldLockedUntil, idempotencykey.FieldStatus, idempotencykey.FieldContentType, idempotencykey.FieldCreatedAt},
			[]any{userID, key, fingerprint, holder, now.Add(s.opts.Lease), 0, "", now})
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
		if s.expired(row, now) {
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
		if answer, err = settled(row, scopes, fingerprint); answer != nil || err != nil {
			return err
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
	if answer != nil || err != nil {
		answer, err = s.refuseOrReplay(userID, key, answer, err)
		return nil, answer, err
	}
	c := &Claim{store: s, id: row.ID, holder: holder, userID: userID, key: key, scopes: scopes, fresh: fresh, stop: make(chan struct{}), stopped: make(chan struct{})}
	if row.Effects != nil {
		c.effects = *row.Effects
	}
	go c.renew()
	s.count("claimed")
	return c, nil, nil
}

// BeginDeferred is Begin for a request whose answer, should its effect
// commit, is known before it runs (the REST delete's 200): predicted.
//
// On SQLite (one instance, one writer at a time) a key no request has
// used is taken in this process alone, and its row is written only with
// the request's effect, in the effect's transaction, its answer included:
// one write, not three (take, effect, answer). A retry meanwhile, in this
// process, is refused as Begin refuses it (ErrInUse, ErrReused). A crash
// before the effect commits leaves nothing, and the retry runs the
// request; after, the retry replays its answer. Should another process on
// the same file write the key first, the effect does not commit (ErrLost)
// and the request answers what that one stored. A key with a row (an
// earlier request's) goes through Begin. On other engines it is Begin,
// with predicted stored with the effect (Claim.Predict).
func (s *Store) BeginDeferred(ctx context.Context, userID string, scopes scope.Set, key, fingerprint string, predicted Answer) (*Claim, *Answer, error) {
	if s.deferrable {
		if err := s.runHere(userID, key, fingerprint); err != nil {
			return nil, nil, err
		}
		exists, err := s.exists(ctx, userID, key)
		if err != nil {
			s.doneHere(userID, key)
			return nil, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		if !exists {
			c := &Claim{store: s, deferred: true, fingerprint: fingerprint, userID: userID, key: key, scopes: scopes, fresh: true,
				stop: make(chan struct{}), stopped: make(chan struct{})}
			close(c.stopped) // nothing to renew
			if err := c.Predict(predicted); err != nil {
				c.end()
				return nil, nil, err
			}
			s.count("claimed")
			return c, nil, nil
		}
		// An earlier request's key: replayed or refused as read, without a
		// write; taken over (or taken anew, past its retention) by Begin.
		row, err := s.client.IdempotencyKey.Query().
			Where(idempotencykey.UserID(userID), idempotencykey.Key(key)).
			Only(ctx)
		s.doneHere(userID, key)
		if err != nil && !ent.IsNotFound(err) {
			return nil, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		if err == nil && !s.expired(row, time.Now()) {
			if answer, err := settled(row, scopes, fingerprint); answer != nil || err != nil {
				answer, err = s.refuseOrReplay(userID, key, answer, err)
				return nil, answer, err
			}
		}
	}
	c, answer, err := s.Begin(ctx, userID, scopes, key, fingerprint)
	if c != nil {
		if err := c.Predict(predicted); err != nil {
			_ = c.Release(ctx)
			return nil, nil, err
		}
	}
	return c, answer, err
}

// exists reports whether userID's key has a row.
func (s *Store) exists(ctx context.Context, userID, key string) (bool, error) {
	rows, err := s.taken.QueryContext(ctx, userID, key)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// runHere takes userID's key in this process for a deferred claim, or
// refuses it as Begin would a key in use.
func (s *Store) runHere(userID, key, fingerprint string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.runningHereLocked(userID, key, fingerprint); err != nil {
		return err
	}
	s.local[userID+"\x00"+key] = fingerprint
	return nil
}

// runningHere refuses a key a deferred claim of this process holds: its
// row is not written yet, so Begin would not see it.
func (s *Store) runningHere(userID, key, fingerprint string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningHereLocked(userID, key, fingerprint)
}

func (s *Store) runningHereLocked(userID, key, fingerprint string) error {
	running, ok := s.local[userID+"\x00"+key]
	switch {
	case !ok:
		return nil
	case running != fingerprint:
		s.count("reused")
		return ErrReused
	default:
		s.count("in_use")
		return ErrInUse
	}
}

func (s *Store) doneHere(userID, key string) {
	s.mu.Lock()
	delete(s.local, userID+"\x00"+key)
	s.mu.Unlock()
}

// expired reports whether row is past its retention and not yet pruned:
// its key is a new request's.
func (s *Store) expired(row *ent.IdempotencyKey, now time.Time) bool {
	return s.opts.Retention > 0 && row.CreatedAt.Before(now.Add(-s.opts.Retention)) && row.LockedUntil.Before(now)
}

// settled returns the answer row stored for the request of fingerprint
// sent with a credential of scopes, or ErrReused or ErrNarrower; nothing
// while the row's request still runs.
func settled(row *ent.IdempotencyKey, scopes scope.Set, fingerprint string) (*Answer, error) {
	if row.Fingerprint != fingerprint {
		return nil, ErrReused
	}
	if row.Status == 0 {
		return nil, nil
	}
	if !scopes.Covers(scope.FromNames(strings.Fields(row.Scopes))) {
		return nil, ErrNarrower
	}
	answer := &Answer{Status: row.Status, ContentType: row.ContentType}
	if row.Body != nil {
		answer.Body = *row.Body
	}
	return answer, nil
}

// refuseOrReplay counts a refusal, or opens a stored answer to replay.
func (s *Store) refuseOrReplay(userID, key string, answer *Answer, err error) (*Answer, error) {
	switch {
	case errors.Is(err, ErrReused):
		s.count("reused")
		return nil, err
	case errors.Is(err, ErrInUse):
		s.count("in_use")
		return nil, err
	case errors.Is(err, ErrNarrower):
		s.count("narrower")
		return nil, err
	case err != nil:
		return nil, err
	}
	body, err := s.open(userID, key, answer.Body)
	if err != nil {
		return nil, err
	}
	answer.Body = body
	s.count("replayed")
	return answer, nil
}

// insert writes a key's row of columns and values in tx, unless the user
// has a row of that key already (INSERT … ON CONFLICT DO NOTHING
// RETURNING id), and returns its id, or false if it was there.
func (s *Store) insert(ctx context.Context, tx *ent.Tx, columns []string, values []any) (id int, inserted bool, err error) {
	query, args := sql.Dialect(database.Dialect(s.client)).
		Insert(idempotencykey.Table).
		Columns(columns...).
		Values(values...).
		OnConflict(sql.ConflictColumns(idempotencykey.FieldUserID, idempotencykey.FieldKey), sql.DoNothing()).
		Returning(idempotencykey.FieldID).
		Query()
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
	// deferred: the key is held in this process and has no row until the
	// effect or the answer writes it (BeginDeferred).
	deferred    bool
	fingerprint string
	// superseded is the answer another process stored for the key first,
	// which a deferred claim's request gives in place of its own; refused,
	// the refusal it gives instead when that key is another request's, or
	// still running there (supersede).
	superseded *Answer
	refused    error
	// lost: another process wrote the key's row first, so the effect did
	// not commit.
	lost atomic.Bool

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
	c.once.Do(func() {
		close(c.stop)
		if c.deferred {
			c.store.doneHere(c.userID, c.key)
		}
	})
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
	if c.deferred {
		defer c.end() // the key is this process's until its row is written
	} else {
		c.end()
	}
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
	if c.deferred && c.answeredInTx.Load() {
		err = ErrLost // its row holds the answer stored with its effect, which stands
	} else if c.deferred {
		err = c.store.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
			return c.insert(ctx, tx, &a, sealed, nil)
		})
		if errors.Is(err, ErrLost) { // its answer is not the one kept
			c.store.count("released")
			return c.supersede(ctx)
		}
	} else {
		err = c.store.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
			n, err := tx.IdempotencyKey.Update().
				Where(c.held()).
				SetStatus(a.Status).SetContentType(a.ContentType).SetBody(sealed).SetScopes(c.scopes.String()).
				SetLockedUntil(time.Now()).
				Save(ctx)
			return cmp.Or(err, lost(n))
		})
	}
	if err != nil {
		return fmt.Errorf("store idempotent answer: %w", err)
	}
	c.store.count("stored")
	return nil
}

// insert writes a deferred claim's row in tx: its effects, and its answer
// if it has one (else the row is the key held, as Begin writes it). It is
// ErrLost when another process wrote the key first.
func (c *Claim) insert(ctx context.Context, tx *ent.Tx, a *Answer, sealed, effects []byte) error {
	now := time.Now()
	columns := []string{idempotencykey.FieldUserID, idempotencykey.FieldKey, idempotencykey.FieldFingerprint, idempotencykey.FieldHolder,
		idempotencykey.FieldLockedUntil, idempotencykey.FieldStatus, idempotencykey.FieldContentType, idempotencykey.FieldCreatedAt}
	values := []any{c.userID, c.key, c.fingerprint, rand.Text(), now, 0, "", now}
	if a != nil {
		values[5], values[6] = a.Status, a.ContentType
		columns = append(columns, idempotencykey.FieldBody, idempotencykey.FieldScopes)
		values = append(values, sealed, c.scopes.String())
	} else {
		values[4] = now.Add(c.store.opts.Lease)
	}
	if effects != nil {
		columns = append(columns, idempotencykey.FieldEffects)
		values = append(values, effects)
	}
	_, inserted, err := c.store.insert(ctx, tx, columns, values)
	if err != nil {
		return fmt.Errorf("write idempotency key: %w", err)
	}
	if !inserted {
		return ErrLost
	}
	return nil
}

// supersede reads what another process wrote first for a deferred
// claim's key, for the request to give in place of its own answer
// (Superseded), as Begin would have given it had that row been there
// first: the answer stored for this request, or ErrReused (another
// request's key), ErrInUse (this request, still running there) or
// ErrNarrower.
func (c *Claim) supersede(ctx context.Context) error {
	row, err := c.store.client.IdempotencyKey.Query().
		Where(idempotencykey.UserID(c.userID), idempotencykey.Key(c.key)).
		Only(ctx)
	if err != nil {
		return fmt.Errorf("read idempotency key: %w", err)
	}
	answer, err := settled(row, c.scopes, c.fingerprint)
	if answer == nil && err == nil {
		err = ErrInUse
	}
	c.superseded, c.refused = c.store.refuseOrReplay(c.userID, c.key, answer, err)
	if c.superseded == nil && !errors.Is(c.refused, ErrReused) && !errors.Is(c.refused, ErrInUse) && !errors.Is(c.refused, ErrNarrower) {
		err, c.refused = c.refused, nil // the stored answer could not be opened: this answer stands
		return err
	}
	return nil
}

// Superseded is what another process stored for the key of this claim's
// request first, which the request gives in place of its own: the answer
// of the same request, sent to both, as a replay; or a refusal of the key
// (ErrReused, ErrInUse, ErrNarrower).
func (c *Claim) Superseded() (*Answer, error) { return c.superseded, c.refused }

// Release ends the claim without an answer: the next request with the key
// runs again (replaying the effects recorded so far).
func (c *Claim) Release(ctx context.Context) error {
	c.end()
	ctx = context.WithoutCancel(ctx)
	if c.deferred { // no row but the effect's, which holds its answer
		c.store.count("released")
		if c.answeredInTx.Load() || !c.lost.Load() {
			return nil // nobody else wrote the key: no row to read
		}
		return c.supersede(ctx)
	}
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
