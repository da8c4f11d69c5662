package webhook

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/queue"
)

// ownerBase is the number of workers the owners' limits are counted
// against, at most: a sender with more workers sends to more owners at
// once, but no more to one owner than a sender of ownerBase workers.
const ownerBase = 16

// fairBase is what the owners' limits are counted against: the workers,
// up to ownerBase.
func (s *Sender) fairBase() int { return min(s.opts.Concurrency, ownerBase) }

// ownerShare bounds a sender's attempts in flight to one owner's endpoints
// that have not shown they answer: a quarter of fairBase (at least 2), so
// that one owner's hanging endpoints leave the rest to everyone else.
func (s *Sender) ownerShare() int { return max(2, s.fairBase()/4) }

// ownerSpare bounds them when they go to endpoints whose last attempt got
// an answer: fairBase but a share. A busy endpoint that answers then
// drains its backlog at several times the share's pace, and one that
// starts hanging holds these workers for one Timeout at most (then it is
// silent, and gets one at a time).
func (s *Sender) ownerSpare() int { return max(s.ownerShare(), s.fairBase()-s.ownerShare()) }

// ownerClaims bounds an owner's claimed deliveries to endpoints that
// answer promptly (within promptAnswer): all the workers but a share,
// which are left to the other owners (and at least its spare). No more
// than its spare are sent to one endpoint at once: the others wait for
// their turn in this sender (see gate). An endpoint that answers slowly
// is claimed its spare at most: its own pace is the limit then, and
// claims ahead would only wait.
//
// A worker takes its next delivery in the commit that records its
// outcome (see outcomes), and on SQLite those commits take turns with the
// deletes' group commits. An owner with no more claimed than it may send
// at once got at most its spare per commit, 12 deliveries a turn, and one
// owner deleting on its own outran its endpoint (issue 26: 0.59 of the
// deletes' pace). Claimed ahead, a turn hands it as many as the workers
// that wait for it, while its receiver still sees no more than the spare
// at once.
func (s *Sender) ownerClaims() int { return max(s.ownerSpare(), s.opts.Concurrency-s.ownerShare()) }

// promptAnswer is how soon an answer must come for its endpoint to be
// claimed ahead (see ownerClaims): well within a commit of outcomes.
const promptAnswer = 50 * time.Millisecond

// aheadWait bounds how long a delivery claimed ahead waits for its turn to
// be sent (see Sender.enter): a receiver that answers takes milliseconds,
// so a second's wait means its attempts are slow or hang. Past it, the
// claims are given back and their workers serve other owners, rather than
// waiting out a hanging attempt's Timeout.
const aheadWait = time.Second

// maxAnswering bounds the endpoints a sender remembers as answering; past
// it, it forgets them all and they show again that they answer.
const maxAnswering = 100_000

// loads are a sender's attempts in flight (and picked) by endpoint and by
// owner, copied for one claim, and the sender's own maps of the endpoints
// whose last attempts got no answer and those whose last attempt got one
// (read in place, under the sender's lock: a claim copies nothing that
// grows with the number of endpoints).
type loads struct {
	endpoint, owner map[string]int
	silent          map[string]int
	answering       map[string]string // endpoint id -> owner id
	prompt          map[string]bool   // answering endpoints whose last answer was prompt
	share, spare    int
	claims          int  // see ownerClaims
	ahead           bool // prompt endpoints may have their owner's claims, not just its spare
}

// endpointLimit is how many attempts an endpoint may have claimed: one (a
// probe) while it does not answer; once it answers, its owner's spare, or
// its owner's claims while it answers promptly (sent the spare at a time:
// see gate); and its owner's share until then.
func (l *loads) endpointLimit(endpointID string) int {
	switch {
	case l.silent[endpointID] > 0:
		return 1
	case l.answering[endpointID] != "":
		return l.answeringLimit(endpointID)
	}
	return l.share
}

// ownerLimit is how many attempts an owner may have claimed, counting one
// more to endpointID: as endpointLimit, but its share while the endpoint
// does not answer.
func (l *loads) ownerLimit(endpointID string) int {
	if l.silent[endpointID] == 0 && l.answering[endpointID] != "" {
		return l.answeringLimit(endpointID)
	}
	return l.share
}

// answeringLimit is the limit of an endpoint that answers: the owner's
// claims if its last answer was prompt and the picks go ahead (see
// pickDue), else its spare.
func (l *loads) answeringLimit(endpointID string) int {
	if l.ahead && l.prompt[endpointID] {
		return l.claims
	}
	return l.spare
}

// claim takes up to slots due deliveries, with their endpoints, for one
// lease, sharing the slots fairly (see pick) rather than oldest first: one
// owner's backlog does not hold back another's deliveries. Deliveries to
// disabled endpoints are not due, nor those waiting for an earlier one
// (see firstPendingOfUpload).
func (s *Sender) claim(ctx context.Context, slots int) ([]*ent.WebhookDelivery, error) {
	s.claiming.Lock()
	defer s.claiming.Unlock()
	picked, now, _, err := s.pickDue(ctx, slots, false)
	if err != nil {
		return nil, err
	}
	claimed, err := s.take(ctx, nil, picked, now)
	s.taken(ctx, claimed, false)
	return claimed, err
}

// readAheadFor is how long the due deliveries a claim read and did not
// pick may serve the next claims of workers going on (see pickDue).
const readAheadFor = 100 * time.Millisecond

// pickDue reads due deliveries and picks up to slots of them (see pick),
// as due at the time it returns, for take to claim. The caller holds
// s.claiming until it has counted what it took (count): claims one after
// the other, each counting the attempts the one before took, keep the
// shares. Its reads are outside any transaction: on SQLite a transaction
// holds the one writer's turn, which deletes wait for.
//
// With ahead, the deliveries an earlier read found due and nobody picked
// serve instead, if they were read within readAheadFor and hold slots picks:
// the workers going on after each commit of outcomes (see outcomes) then
// read the queue once every several commits, not at each (issue 26). Take
// claims only those still due, still first of their upload and to an
// enabled endpoint; one picked by another sender meanwhile is not taken.
// Deliveries that fall due meanwhile wait for the next read: readAheadFor
// at most.
//
// What was read ahead carries its endpoints as they were then: the caller
// gives fromAhead to taken once it has claimed, which reads them again.
func (s *Sender) pickDue(ctx context.Context, slots int, ahead bool) (picked []*ent.WebhookDelivery, now time.Time, fromAhead bool, err error) {
	if ahead && len(s.ahead) >= slots && time.Since(s.aheadAt) < s.readAheadFor {
		s.mu.Lock()
		l := s.loads()
		picked, rest := l.pick(s.ahead, slots)
		if len(picked) < slots && s.aheadSawAll {
			picked, rest = l.pickAhead(picked, rest, slots)
		}
		s.mu.Unlock()
		if len(picked) == slots {
			s.ahead = rest
			return picked, time.Now(), true, nil
		}
	}
	now = time.Now()
	limit := 4 * s.opts.Concurrency
	// The oldest due first: read in the order of an index, as far as limit.
	candidates, err := s.client.WebhookDelivery.Query().
		Where(dueAt(now)...).
		WithEndpoint().
		Order(webhookdelivery.ByNextAttemptAt(), webhookdelivery.ByID()).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, now, false, fmt.Errorf("list due deliveries: %w", err)
	}
	// The loads read the sender's breaker maps in place, so they are used
	// under s.mu only, and only for work without I/O.
	s.mu.Lock()
	l := s.loads()
	picked, rest := l.pick(candidates, slots)
	more := len(candidates) == limit && len(picked) < slots
	var room []predicate.WebhookEndpoint
	if more {
		room = l.room()
	}
	s.mu.Unlock()
	if more {
		// The oldest are all of endpoints or owners that have their
		// share, and there may be others' behind them, however many.
		others, err := s.othersDue(ctx, now, limit, picked, room)
		if err != nil {
			return nil, now, false, err
		}
		s.mu.Lock()
		also, unpicked := l.pick(others, slots-len(picked))
		picked = append(picked, also...)
		rest = appendNew(rest, unpicked)
		s.mu.Unlock()
	}
	s.mu.Lock()
	if len(picked) < slots {
		picked, rest = l.pickAhead(picked, rest, slots)
	}
	s.mu.Unlock()
	s.ahead, s.aheadAt, s.aheadSawAll = rest, now, len(candidates) < limit
	return picked, now, false, nil
}

// appendNew appends to ds those of more it does not hold yet.
func appendNew(ds, more []*ent.WebhookDelivery) []*ent.WebhookDelivery {
	held := make(map[int]bool, len(ds))
	for _, d := range ds {
		held[d.ID] = true
	}
	for _, d := range more {
		if !held[d.ID] {
			ds = append(ds, d)
		}
	}
	return ds
}

// pickAhead adds to picked, from rest, up to slots in all, with the
// owners of endpoints that answer promptly taking their claims ahead (see
// ownerClaims), and returns picked and what is left. Every owner first
// had its turns within its spare, and owners the read did not reach had
// theirs through othersDue: claims ahead take only slots nobody else
// wanted.
func (l *loads) pickAhead(picked, rest []*ent.WebhookDelivery, slots int) ([]*ent.WebhookDelivery, []*ent.WebhookDelivery) {
	l.ahead = true
	defer func() { l.ahead = false }()
	more, rest := l.pick(rest, slots-len(picked))
	return append(picked, more...), rest
}

// taken counts claimed deliveries in the sender's attempts in flight;
// those read ahead (see pickDue) first get their endpoints as they are now,
// so that a secret rotated since the read signs nothing more. If that read
// fails, they go with the endpoints as read (logged).
func (s *Sender) taken(ctx context.Context, claimed []*ent.WebhookDelivery, readAhead bool) {
	if readAhead && len(claimed) > 0 {
		if err := s.freshEndpoints(ctx, claimed); err != nil {
			s.logger.ErrorContext(ctx, "webhook claim: read endpoints again", "error", err)
		}
	}
	s.count(claimed)
}

// freshEndpoints reads the claimed deliveries' endpoints again and gives
// each delivery its endpoint as it is now.
func (s *Sender) freshEndpoints(ctx context.Context, claimed []*ent.WebhookDelivery) error {
	var ids []string
	for _, d := range claimed {
		if !slices.Contains(ids, d.EndpointID) {
			ids = append(ids, d.EndpointID)
		}
	}
	endpoints, err := s.client.WebhookEndpoint.Query().Where(webhookendpoint.IDIn(ids...)).All(ctx)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	byID := make(map[string]*ent.WebhookEndpoint, len(endpoints))
	for _, ep := range endpoints {
		byID[ep.ID] = ep
	}
	for _, d := range claimed {
		if ep := byID[d.EndpointID]; ep != nil {
			d.Edges.Endpoint = ep
		}
	}
	return nil
}

// loads copies the sender's attempts in flight for one claim's picks. The
// caller holds s.mu.
func (s *Sender) loads() *loads {
	return &loads{
		endpoint: maps.Clone(s.endpointLoad), owner: maps.Clone(s.ownerLoad),
		silent: s.silences, answering: s.answering, prompt: s.prompt,
		share: s.ownerShare(), spare: s.ownerSpare(), claims: s.ownerClaims(),
	}
}

// count adds claimed deliveries to the sender's attempts in flight.
func (s *Sender) count(claimed []*ent.WebhookDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range claimed {
		s.endpointLoad[d.EndpointID]++
		s.ownerLoad[d.Edges.Endpoint.OwnerID]++
	}
}

// dueAt are the conditions of a delivery due at now.
func dueAt(now time.Time) []predicate.WebhookDelivery {
	return []predicate.WebhookDelivery{
		webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
		webhookdelivery.NextAttemptAtLTE(now),
		endpointEnabled(),
		firstPendingOfUpload(),
	}
}

// endpointEnabled keeps back deliveries to disabled endpoints, written as
// "not one of the disabled endpoints" (a set read once per claim: they
// are few) rather than as a join with the endpoint: a join lets the
// planner start from the endpoints and read each one's pending
// deliveries, all of them, before it sorts out the oldest due. Without
// one, the claim reads the deliveries in the order of the (status,
// next_attempt_at) index and stops at its limit, however long the backlog
// (issue 26). PostgreSQL took the join on tables it had no statistics of
// yet, which is how a burst of deletes leaves them.
func endpointEnabled() predicate.WebhookDelivery {
	return func(s *sql.Selector) {
		disabled := sql.Dialect(s.Dialect()).Select(webhookendpoint.FieldID).From(sql.Table(webhookendpoint.Table))
		disabled.Where(sql.NotNull(disabled.C(webhookendpoint.FieldDisabledAt)))
		s.Where(sql.NotIn(s.C(webhookdelivery.FieldEndpointID), disabled))
	}
}

// room are the conditions of an endpoint with room for another attempt,
// per the loads: neither it nor its owner is full.
func (l *loads) room() []predicate.WebhookEndpoint {
	var room []predicate.WebhookEndpoint
	if full := fullKeys(l.endpoint, l.endpointLimit); len(full) > 0 {
		room = append(room, webhookendpoint.IDNotIn(full...))
	}
	if full := fullKeys(l.owner, func(string) int { return l.claims }); len(full) > 0 {
		room = append(room, webhookendpoint.OwnerIDNotIn(full...))
	}
	// An owner with its share in flight has room only at endpoints that answer.
	if atShare := fullKeys(l.owner, func(string) int { return l.share }); len(atShare) > 0 {
		var answering []string
		for endpointID, ownerID := range l.answering {
			if l.owner[ownerID] >= l.share && l.silent[endpointID] == 0 {
				answering = append(answering, endpointID)
			}
		}
		owners := webhookendpoint.OwnerIDNotIn(atShare...)
		if len(answering) > 0 {
			owners = webhookendpoint.Or(owners, webhookendpoint.IDIn(answering...))
		}
		room = append(room, owners)
	}
	return room
}

// othersDue returns the oldest due deliveries (up to limit) of the
// endpoints that have due deliveries and room (see loads.room), besides
// those picked: found endpoint by endpoint, so that a backlog of endpoints
// without room is not read through.
func (s *Sender) othersDue(ctx context.Context, now time.Time, limit int, picked []*ent.WebhookDelivery, room []predicate.WebhookEndpoint) ([]*ent.WebhookDelivery, error) {
	endpointPreds := append([]predicate.WebhookEndpoint{
		webhookendpoint.DisabledAtIsNil(),
		webhookendpoint.HasDeliveriesWith(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING), webhookdelivery.NextAttemptAtLTE(now)),
	}, room...)
	endpointIDs, err := s.client.WebhookEndpoint.Query().Where(endpointPreds...).Limit(limit).IDs(ctx)
	if err != nil || len(endpointIDs) == 0 {
		return nil, err
	}
	preds := append(dueAt(now), webhookdelivery.EndpointIDIn(endpointIDs...))
	if len(picked) > 0 {
		ids := make([]int, len(picked))
		for i, d := range picked {
			ids[i] = d.ID
		}
		preds = append(preds, webhookdelivery.IDNotIn(ids...))
	}
	others, err := s.client.WebhookDelivery.Query().
		Where(preds...).
		WithEndpoint().
		Order(webhookdelivery.ByNextAttemptAt(), webhookdelivery.ByID()).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", err)
	}
	return others, nil
}

// fullKeys returns the keys of load at their limit or past it.
func fullKeys(load map[string]int, limit func(string) int) []string {
	var full []string
	for key, n := range load {
		if n >= limit(key) {
			full = append(full, key)
		}
	}
	return full
}

// release ends a claimed delivery's attempt in the sender's counts.
func (s *Sender) release(d *ent.WebhookDelivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	decrement(s.endpointLoad, d.EndpointID)
	decrement(s.ownerLoad, d.Edges.Endpoint.OwnerID)
}

func decrement(m map[string]int, key string) {
	if m[key] <= 1 {
		delete(m, key) // the maps hold only what is in flight
		return
	}
	m[key]--
}

// pick chooses up to slots of the candidates (oldest first) in turns: each
// owner with room in turn, oldest first, takes the oldest candidate of its
// least busy endpoint. Counting attempts in flight and those picked (the
// loads, which it updates), no endpoint gets more than its limit nor owner
// more than its limit (its share, or its claims for endpoints that answer).
func (l *loads) pick(candidates []*ent.WebhookDelivery, slots int) (picked, rest []*ent.WebhookDelivery) {
	var owners []string
	byOwner := map[string][]*ent.WebhookDelivery{}
	for _, d := range candidates {
		if d.Edges.Endpoint == nil {
			continue // deleted since, with its deliveries
		}
		owner := d.Edges.Endpoint.OwnerID
		if byOwner[owner] == nil {
			owners = append(owners, owner)
		}
		byOwner[owner] = append(byOwner[owner], d)
	}
	for progress := true; progress && len(picked) < slots; {
		progress = false
		for _, owner := range owners {
			if len(picked) == slots || l.owner[owner] >= l.claims {
				continue
			}
			queue := byOwner[owner]
			best := -1
			for i, d := range queue {
				if l.owner[owner] >= l.ownerLimit(d.EndpointID) {
					continue
				}
				if load := l.endpoint[d.EndpointID]; load < l.endpointLimit(d.EndpointID) && (best < 0 || load < l.endpoint[queue[best].EndpointID]) {
					best = i
				}
			}
			if best < 0 {
				continue
			}
			d := queue[best]
			byOwner[owner] = slices.Delete(queue, best, best+1)
			l.endpoint[d.EndpointID]++
			l.owner[owner]++
			picked = append(picked, d)
			progress = true
		}
	}
	for _, d := range candidates {
		if d.Edges.Endpoint != nil && !slices.Contains(picked, d) {
			rest = append(rest, d)
		}
	}
	return picked, rest
}

// take claims, in one statement (queue.Claim, or queue.ClaimTx in tx if
// not nil), those of the deliveries that are still due at now, by moving
// their next_attempt_at a lease forward, and returns them in their order:
// one that is not was claimed by another sender since it was read.
func (s *Sender) take(ctx context.Context, tx *ent.Tx, due []*ent.WebhookDelivery, now time.Time) ([]*ent.WebhookDelivery, error) {
	ids := make([]int, 0, len(due))
	for _, d := range due {
		if d.Edges.Endpoint != nil { // else deleted since, with its deliveries
			ids = append(ids, d.ID)
		}
	}
	type taken struct {
		ID       int `sql:"id"`
		Attempts int `sql:"attempts"`
	}
	batch := queue.Batch{
		Table: webhookdelivery.Table, IDs: ids,
		// Read as due, perhaps a while ago (see pickDue): claimed only if
		// still pending, first of their upload and to an enabled endpoint.
		Where: []func(*sql.Selector){webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING), firstPendingOfUpload(), endpointEnabled()},
		Now:   now, LeaseEnd: time.Now().Add(s.lease()),
		Returning: []string{webhookdelivery.FieldID, webhookdelivery.FieldAttempts},
	}
	var rows []taken
	var err error
	if tx != nil {
		rows, err = queue.ClaimTx[taken](ctx, tx, batch)
	} else {
		rows, err = queue.Claim[taken](ctx, s.client, batch)
	}
	if err != nil {
		return nil, fmt.Errorf("claim %d deliveries: %w", len(ids), err)
	}
	// The attempts are the claim's token (stillClaimed).
	attempts := make(map[int]int, len(rows))
	for _, r := range rows {
		attempts[r.ID] = r.Attempts
	}
	var claimed []*ent.WebhookDelivery
	for _, d := range due {
		if n, ok := attempts[d.ID]; ok {
			d.Attempts = n
			claimed = append(claimed, d)
		}
	}
	return claimed, nil
}

// firstPendingOfUpload keeps a delivery back while the delivery it waits
// for (after_id: the latest of the same upload to the same endpoint still
// PENDING when it was queued, or one redelivered since) is PENDING, whether due, backing off or in
// flight: a receiver hears of an upload's events in order (deleted before
// purged), across retries. Other uploads' deliveries do not wait. That one
// waits in turn for its own, so a delivery goes only once every earlier one
// of its pair has ended; the order is that of Enqueue calls, which for one
// upload follow each other (each change of an upload commits before the
// next begins).
//
// The check reads one row by its key, written as that row's status (a
// scalar subquery), which PostgreSQL evaluates per candidate by the
// primary key; as NOT EXISTS it hashed every pending delivery first. It
// used to search the pair's earlier deliveries, which the planner could
// not always do through an index: PostgreSQL without statistics on a table that filled since its
// last ANALYZE read each endpoint's pending deliveries for each due one,
// and even with the right index every claim read all of a backlog's
// waiting deliveries (issue 26).
func firstPendingOfUpload() predicate.WebhookDelivery {
	return func(s *sql.Selector) {
		earlier := sql.Table(webhookdelivery.Table).As("earlier")
		status := sql.Dialect(s.Dialect()).Select(earlier.C(webhookdelivery.FieldStatus)).From(earlier).
			Where(sql.ColumnsEQ(earlier.C(webhookdelivery.FieldID), s.C(webhookdelivery.FieldAfterID)))
		s.Where(sql.P(func(b *sql.Builder) {
			b.WriteString("COALESCE(").Wrap(func(b *sql.Builder) { b.Join(status) }).
				WriteString(", '') <> ").Arg(webhookdelivery.StatusPENDING.String())
		}))
	}
}

// noAnswer is the endpoint's circuit breaker: an attempt got no answer
// (it timed out, could not connect, or could not be made at all), so the
// endpoint's other pending deliveries are postponed with a backoff that
// grows with the attempts in a row that got none. A dead or hanging
// endpoint is then tried about once per backoff, not once per delivery,
// by every sender: the postponement is in the database; and this sender
// sends it one attempt at a time (endpointLimit). Answers of any
// status close the breaker (answered): the endpoint is up, and a refusal
// is about one message.
func (s *Sender) noAnswer(ctx context.Context, endpointID string) {
	s.mu.Lock()
	delete(s.answering, endpointID)
	s.silences[endpointID]++
	silences := s.silences[endpointID]
	s.mu.Unlock()
	ctx, cancel := recordContext(ctx)
	defer cancel()
	until := s.postponedUntil(silences)
	// Deliveries in flight move too, which only lengthens their lease:
	// their outcome is recorded by attempts (stillClaimed), not by time.
	n, err := s.client.WebhookDelivery.Update().
		Where(
			webhookdelivery.EndpointID(endpointID),
			webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
			webhookdelivery.NextAttemptAtLT(until),
		).
		SetNextAttemptAt(until).
		Save(ctx)
	if err != nil {
		s.logger.ErrorContext(ctx, "postpone webhook endpoint", "endpoint_id", endpointID, "error", err)
		return
	}
	s.logger.WarnContext(ctx, "webhook endpoint did not answer; its deliveries wait", "endpoint_id", endpointID,
		"attempts_without_answer", silences, "postponed", n, "until", until)
}

// postponedUntil is when the breaker lets an endpoint be tried again
// after silences attempts in a row got no answer.
func (s *Sender) postponedUntil(silences int) time.Time {
	return time.Now().Add(backoff.Delay(silences, firstBackoff, s.opts.MaxBackoff))
}

// answered closes the endpoint's circuit breaker, and lets it have its
// owner's spare, or, if the answer took less than promptAnswer, its
// owner's claims (see ownerClaims), sent its spare at a time (see gate).
func (s *Sender) answered(endpoint *ent.WebhookEndpoint, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.silences, endpoint.ID)
	if len(s.answering) >= maxAnswering {
		clear(s.answering)
		clear(s.prompt)
	}
	s.answering[endpoint.ID] = endpoint.OwnerID
	if took < s.promptAnswer {
		s.prompt[endpoint.ID] = true
	} else {
		delete(s.prompt, endpoint.ID)
	}
}
