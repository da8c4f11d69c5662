//go:build soak

package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
)

// webhookSettings lets the server deliver to a receiver on loopback over
// plain HTTP.
var webhookSettings = []string{"WEBHOOK_ALLOW_HTTP=true", "WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", "RATE_LIMIT=0"}

// delivery is one request a receiver took.
type delivery struct {
	messageID string // webhook-id
	eventType string
	uploadID  string
	at        time.Time
}

// event names what a delivery reports: its type and upload.
func (d delivery) event() string { return d.eventType + " " + d.uploadID }

// receiver is a user's webhook endpoint, run by the test on a loopback
// port it keeps: every request is verified with the Standard Webhooks
// library, then answer decides the status (it may block). It can go down
// for real (nothing listens on the port) and come back on the same port.
type receiver struct {
	addr   string
	answer func(r *http.Request, d delivery) int

	mu         sync.Mutex
	verifier   *standardwebhooks.Webhook
	server     *http.Server
	requests   []delivery // every verified request, in order of arrival
	accepted   []delivery // those answered 2xx, in order
	refused    int        // answered otherwise by answer
	unverified []string   // requests that failed verification, why
}

func newReceiver(t *testing.T, answer func(r *http.Request, d delivery) int) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{addr: ln.Addr().String(), answer: answer}
	rc.serve(ln)
	t.Cleanup(rc.down)
	return rc
}

func (rc *receiver) url() string { return "http://" + rc.addr + "/hook" }

// trust sets the secret that signs deliveries, from createWebhookEndpoint.
func (rc *receiver) trust(t *testing.T, secret string) {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("the secret is not a Standard Webhooks secret: %v", err)
	}
	rc.mu.Lock()
	rc.verifier = v
	rc.mu.Unlock()
}

func (rc *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(rc.handle), ReadHeaderTimeout: 10 * time.Second}
	rc.mu.Lock()
	rc.server = srv
	rc.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection: from now on connecting
// is refused.
func (rc *receiver) down() {
	rc.mu.Lock()
	srv := rc.server
	rc.server = nil
	rc.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same port.
func (rc *receiver) up() error {
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", rc.addr)
		if err == nil {
			rc.serve(ln)
			return nil
		}
		if try == 50 {
			return fmt.Errorf("listening again on %s: %w", rc.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (rc *receiver) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the sender hung up
	}
	var payload struct {
		Type string
		Data struct{ ID string }
	}
	rc.mu.Lock()
	verifier := rc.verifier
	rc.mu.Unlock()
	if verifier == nil {
		err = errors.New("no secret yet")
	} else if err = verifier.Verify(body, r.Header); err == nil {
		err = json.Unmarshal(body, &payload)
	}
	if err != nil {
		rc.mu.Lock()
		rc.unverified = append(rc.unverified, fmt.Sprintf("%s: %v", r.Header.Get("webhook-id"), err))
		rc.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d := delivery{messageID: r.Header.Get("webhook-id"), eventType: payload.Type, uploadID: payload.Data.ID, at: time.Now()}
	rc.mu.Lock()
	rc.requests = append(rc.requests, d)
	rc.mu.Unlock()
	status := rc.answer(r, d)
	rc.mu.Lock()
	if status >= 200 && status <= 299 {
		d.at = time.Now()
		rc.accepted = append(rc.accepted, d)
	} else {
		rc.refused++
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

// arrivals returns the verified requests so far, in order.
func (rc *receiver) arrivals() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.requests)
}

// acceptances returns the requests answered 2xx so far, in order.
func (rc *receiver) acceptances() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted)
}

// tally is what a receiver has taken so far.
type tally struct {
	requests, accepted, refused, duplicates int
	unverified                              []string
	firstAccepted                           map[string]int // event -> position of its first acceptance
	lastFirstAt                             time.Time      // when the last event first accepted was
	seenUploads                             map[string]bool
	types                                   map[string]int // requests of each event type
}

func (rc *receiver) tally() tally {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	tl := tally{
		requests: len(rc.requests), accepted: len(rc.accepted), refused: rc.refused,
		unverified:    slices.Clone(rc.unverified),
		firstAccepted: map[string]int{}, seenUploads: map[string]bool{}, types: map[string]int{},
	}
	messages := map[string]bool{}
	for i, d := range rc.accepted {
		if messages[d.messageID] {
			tl.duplicates++
		}
		messages[d.messageID] = true
		if _, ok := tl.firstAccepted[d.event()]; !ok {
			tl.firstAccepted[d.event()] = i
			tl.lastFirstAt = d.at
		}
	}
	for _, d := range rc.requests {
		tl.seenUploads[d.uploadID] = true
		tl.types[d.eventType]++
	}
	return tl
}

// missing lists the events of deleted not yet accepted.
func (tl tally) missing(deleted []string, eventTypes ...string) []string {
	var out []string
	for _, id := range deleted {
		for _, typ := range eventTypes {
			if _, ok := tl.firstAccepted[typ+" "+id]; !ok {
				out = append(out, typ+" "+id)
			}
		}
	}
	return out
}

// outOfOrder lists the uploads whose upload.purged was first accepted
// before their upload.deleted.
func (tl tally) outOfOrder(deleted []string) []string {
	var out []string
	for _, id := range deleted {
		del, okDel := tl.firstAccepted["upload.deleted "+id]
		pur, okPur := tl.firstAccepted["upload.purged "+id]
		if okPur && (!okDel || pur < del) {
			out = append(out, id)
		}
	}
	return out
}

// strangers lists the uploads some request was about that are not in
// deleted.
func (tl tally) strangers(deleted []string) []string {
	known := map[string]bool{}
	for _, id := range deleted {
		known[id] = true
	}
	var out []string
	for id := range tl.seenUploads {
		if !known[id] {
			out = append(out, id)
		}
	}
	return out
}

// graphQL posts one operation and decodes its data into out.
func graphQL(baseURL, apiKey, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", apiKey)
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var answer struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return err
	}
	if len(answer.Errors) > 0 {
		return fmt.Errorf("graphql errors: %v", answer.Errors)
	}
	return json.Unmarshal(answer.Data, out)
}

// registerEndpoint creates a webhook endpoint for rc that hears of events,
// and tells rc its secret.
func registerEndpoint(t *testing.T, srv *server, apiKey string, rc *receiver, events ...string) {
	t.Helper()
	var data struct {
		CreateWebhookEndpoint struct {
			Secret   string
			Endpoint struct{ ID string }
		}
	}
	err := graphQL(srv.url(), apiKey, `mutation($url: String!, $events: [UploadEventKind!]) {
  createWebhookEndpoint(url: $url, events: $events) { secret endpoint { id } }
}`, map[string]any{"url": rc.url(), "events": events}, &data)
	if err != nil {
		t.Fatal(err)
	}
	rc.trust(t, data.CreateWebhookEndpoint.Secret)
}

// pendingDeliveries counts the server's deliveries still PENDING.
func (s *server) pendingDeliveries() int {
	return s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).Count(ctx)
	})
}

// deliveryAttempts sums the attempts the server made, refused connections
// included.
func (s *server) deliveryAttempts() int {
	return s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.WebhookDelivery.Query().Aggregate(ent.Sum(webhookdelivery.FieldAttempts)).Int(ctx)
	})
}

// TestWebhooksFlakyReceiver: 10,000 REST deletes, 16 at a time, with an
// endpoint that hears of deletes and purges. Its receiver fails 30% of
// requests at random and is down (connections refused) for 20 s while the
// deletes and deliveries flow. Every upload.deleted and upload.purged
// arrives at least once, signed, deleted before purged; nothing arrives
// about the 100 uploads not deleted. The sender's backoff is capped at 5 s
// (WEBHOOK_MAX_BACKOFF): with the default hour, the one delivery in 20,000
// that fails ten times in a row would wait a quarter of an hour.
func TestWebhooksFlakyReceiver(t *testing.T) {
	const uploads, kept, workers, failRate, outage = 10000, 100, 16, 0.3, 20 * time.Second
	const outageAfter = 2000 // answered deletes
	// The wait for the last events ends when none has come for stallLimit
	// (the backoff is capped at 5 s), or after patience in all.
	const stallLimit, patience = time.Minute, 10 * time.Minute
	srv := newServer(t, append(s3Settings(t), append(webhookSettings, "WEBHOOK_MAX_BACKOFF=5s")...)...)
	srv.start()
	logErrorsOnFailure(t, srv)
	_, key := srv.newUser("hooks@example.com")
	rc := newReceiver(t, func(*http.Request, delivery) int {
		if rand.Float64() < failRate {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	registerEndpoint(t, srv, key, rc, "DELETED", "PURGED")

	seedStart := time.Now()
	ids := uploadMany(t, srv.url(), key, uploads+kept, 32)
	t.Logf("seeded %d uploads in %s", uploads+kept, time.Since(seedStart).Round(time.Millisecond))
	toDelete := ids[:uploads]

	var (
		mu       sync.Mutex
		answered []string // deletes answered 200, in order
		statuses = map[int]int{}
		verdict  = newVerdict()
	)
	answeredSoFar := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(answered)
	}

	// The receiver goes down once 2,000 deletes are answered, for 20 s.
	var downAt, backAt time.Time
	var pendingAtReturn int
	outageDone := make(chan struct{})
	go func() {
		defer close(outageDone)
		for len(answeredSoFar()) < outageAfter {
			select {
			case <-verdict.reached:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		rc.down()
		downAt = time.Now()
		select {
		case <-verdict.reached:
		case <-time.After(outage):
		}
		pendingAtReturn = srv.pendingDeliveries()
		if err := rc.up(); err != nil {
			verdict.decide(err.Error())
		}
		backAt = time.Now()
	}()

	// Meanwhile the events are checked as they come: the test ends as soon
	// as one is lost for sure, or arrives out of order, unsigned or about
	// an upload not deleted.
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			if reason := lostForSure(srv, rc, toDelete, answeredSoFar()); reason != "" {
				verdict.decide(reason)
			}
			select {
			case <-verdict.reached:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()

	queue := make(chan string, len(toDelete))
	for _, i := range rand.Perm(len(toDelete)) {
		queue <- toDelete[i]
	}
	close(queue)
	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range queue {
				if verdict.done() {
					return
				}
				status, body, err := deleteREST(srv.url(), key, id)
				if err != nil || status != 200 {
					verdict.decide(fmt.Sprintf("delete %s: %d %s %v", id, status, body, err))
				}
				mu.Lock()
				statuses[status]++
				if status == 200 {
					answered = append(answered, id)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	deleteTime := time.Since(began)
	pendingAtEnd := srv.pendingDeliveries()
	acceptedAtEnd := rc.tally().accepted
	<-outageDone

	// Wait until every event has arrived (or the watcher decides).
	for !verdict.done() {
		tl := rc.tally()
		if len(tl.missing(toDelete, "upload.deleted", "upload.purged")) == 0 {
			verdict.decide("")
			break
		}
		lastNews := backAt
		if tl.lastFirstAt.After(lastNews) {
			lastNews = tl.lastFirstAt
		}
		if time.Since(backAt) > patience || time.Since(lastNews) > stallLimit {
			verdict.decide(fmt.Sprintf("%d deliveries still pending %s after the receiver came back, the last new event %s ago",
				srv.pendingDeliveries(), time.Since(backAt).Round(time.Second), time.Since(tl.lastFirstAt).Round(time.Second)))
			break
		}
		select {
		case <-verdict.reached:
		case <-time.After(500 * time.Millisecond):
		}
	}
	<-watchDone
	final := lostForSure(srv, rc, toDelete, answeredSoFar()) // what came after the watcher's last look
	tl := rc.tally()
	missing := tl.missing(toDelete, "upload.deleted", "upload.purged")
	attempts := srv.deliveryAttempts()
	expected := 2 * len(toDelete)
	outageText := "never went down (the test ended first)"
	if !backAt.IsZero() {
		outageText = fmt.Sprintf("was down %s from %s into the deletes", backAt.Sub(downAt).Round(time.Millisecond), downAt.Sub(began).Round(time.Millisecond))
	}
	t.Logf("FIGURE webhooks, flaky receiver: %d REST deletes (%d at a time) in %s, answers %v; the receiver fails %.0f%% at random and %s",
		uploads, workers, deleteTime.Round(time.Millisecond), statuses, failRate*100, outageText)
	t.Logf("FIGURE webhooks, flaky receiver: deliveries expected %d; requests received %d, failed by the receiver %d, accepted %d (incl. duplicates), duplicates (same webhook-id accepted again) %d; sender attempts %d (refused connections included)",
		expected, tl.requests, tl.refused, tl.accepted, tl.duplicates, attempts)
	if len(missing) == 0 {
		sinceDeletes := tl.lastFirstAt.Sub(began.Add(deleteTime))
		t.Logf("FIGURE webhooks, flaky receiver: deliveries pending %d when the receiver came back, %d when the deletes ended (%d accepted while they ran); "+
			"all arrived %s after the receiver came back, %s after the last delete (%.0f deliveries/s); unverified %d; lost=0",
			pendingAtReturn, pendingAtEnd, acceptedAtEnd, tl.lastFirstAt.Sub(backAt).Round(time.Millisecond), sinceDeletes.Round(time.Millisecond),
			float64(pendingAtEnd)/sinceDeletes.Seconds(), len(tl.unverified))
	} else {
		t.Logf("FIGURE webhooks, flaky receiver: ended %s after the first delete; unverified %d; events not arrived %d",
			verdict.at.Sub(began).Round(time.Millisecond), len(tl.unverified), len(missing))
	}
	if verdict.reason != "" {
		t.Errorf("decided %s after the first delete: %s", verdict.at.Sub(began).Round(time.Millisecond), verdict.reason)
	} else if final != "" {
		t.Error(final)
	}
	if len(missing) > 0 {
		t.Errorf("%d events never arrived, e.g. %v", len(missing), first(missing))
	}
	if n := tl.accepted - tl.duplicates; n != expected {
		t.Errorf("%d distinct deliveries accepted, want %d (one per event)", n, expected)
	}
}

// verdict is the first reason a test decided to end early ("" for done
// without fault); reached is closed once it is decided.
type verdict struct {
	once    sync.Once
	reason  string
	at      time.Time
	reached chan struct{}
}

func newVerdict() *verdict { return &verdict{reached: make(chan struct{})} }

func (v *verdict) decide(reason string) {
	v.once.Do(func() { v.reason, v.at = reason, time.Now(); close(v.reached) })
}

func (v *verdict) done() bool {
	select {
	case <-v.reached:
		return true
	default:
		return false
	}
}

// lostForSure says what is already wrong with what the receiver has taken,
// "" if nothing: a request failed verification, was of a type not
// subscribed or about an upload not among toDelete, an upload.purged came
// before its upload.deleted, or an event of a deleted upload can no longer
// come. That is when the upload's delete was answered, its purge is done
// (so each of its events was queued in the transaction of its change) and
// none of its deliveries is PENDING: a delivery leaves PENDING only once
// the receiver has accepted it.
func lostForSure(srv *server, rc *receiver, toDelete, answered []string) string {
	purging := srv.uploadIDs(func(ctx context.Context, client *ent.Client) ([]string, error) {
		return client.ObjectPurge.Query().Select(objectpurge.FieldUploadID).Strings(ctx)
	})
	pending := srv.uploadIDs(func(ctx context.Context, client *ent.Client) ([]string, error) {
		return client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).
			Select(webhookdelivery.FieldUploadID).Strings(ctx)
	})
	tl := rc.tally() // after reading the database: it has taken all it ever will of the settled uploads
	var wrong []string
	var settled []string
	for _, id := range answered {
		if !purging[id] && !pending[id] {
			settled = append(settled, id)
		}
	}
	if lost := tl.missing(settled, "upload.deleted", "upload.purged"); len(lost) > 0 {
		wrong = append(wrong, fmt.Sprintf("%d events lost: no delivery of them is pending, e.g. %v", len(lost), first(lost)))
	}
	if len(tl.unverified) > 0 {
		wrong = append(wrong, fmt.Sprintf("%d requests failed verification, e.g. %v", len(tl.unverified), first(tl.unverified)))
	}
	for typ, n := range tl.types {
		if typ != "upload.deleted" && typ != "upload.purged" {
			wrong = append(wrong, fmt.Sprintf("%d events of type %q, not subscribed", n, typ))
		}
	}
	if strangers := tl.strangers(toDelete); len(strangers) > 0 {
		wrong = append(wrong, fmt.Sprintf("events about %d uploads not deleted, e.g. %v", len(strangers), first(strangers)))
	}
	if bad := tl.outOfOrder(toDelete); len(bad) > 0 {
		wrong = append(wrong, fmt.Sprintf("upload.purged before upload.deleted for %d uploads, e.g. %v", len(bad), first(bad)))
	}
	return strings.Join(wrong, "; ")
}

// uploadIDs reads a set of upload ids from the server's database.
func (s *server) uploadIDs(query func(context.Context, *ent.Client) ([]string, error)) map[string]bool {
	set := map[string]bool{}
	s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		ids, err := query(ctx, client)
		for _, id := range ids {
			set[id] = true
		}
		return len(ids), err
	})
	return set
}

// logErrorsOnFailure logs the server's error lines if the test fails.
func logErrorsOnFailure(t *testing.T, srv *server) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		log, _ := os.ReadFile(srv.log.Name())
		var errorLines []string
		for line := range strings.Lines(string(log)) {
			if strings.Contains(line, `"level":"ERROR"`) {
				errorLines = append(errorLines, strings.TrimSpace(line))
			}
		}
		t.Logf("server log: %d error lines, e.g. %v", len(errorLines), first(errorLines))
	})
}

// TestWebhookSenderKilled: the server is SIGKILLed while its sender waits
// for a receiver that holds the deliveries open without answering. After a
// restart on the same database, each of those deliveries comes again with
// the same webhook-id once its lease (3 × WEBHOOK_TIMEOUT) has run out, and
// every event arrives, upload.deleted before upload.purged.
func TestWebhookSenderKilled(t *testing.T) {
	const uploads, timeout = 8, 2 * time.Second
	const lease = 3 * timeout
	srv := newServer(t, append(s3Settings(t), append(webhookSettings, "WEBHOOK_TIMEOUT="+timeout.String())...)...)
	srv.start()
	logErrorsOnFailure(t, srv)
	_, key := srv.newUser("killed-hooks@example.com")

	var holding atomic.Bool
	holding.Store(true)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(r *http.Request, d delivery) int {
		if !holding.Load() {
			// Answered slowly, so that the checks below see deliveries
			// on their second attempt, claimed with a new lease, before
			// they are accepted: that is no delivery rescheduled late.
			time.Sleep(300 * time.Millisecond)
			return http.StatusNoContent
		}
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // never answered: the sender dies first
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusServiceUnavailable
	})
	defer close(release)
	registerEndpoint(t, srv, key, rc, "DELETED", "PURGED")
	ids := uploadMany(t, srv.url(), key, uploads, 4)
	// The kill must come within the timeout of the first arrival, or the
	// sender gives up on the held deliveries and retries them on its own,
	// with backoff, before there is a kill to survive. So it is timed from
	// the first arrival, not from deleteUploads' answer: the deliveries go
	// out as soon as the delete commits, and the answer may come later (it
	// waits for the objects' removal, up to the inline budget), or never,
	// if the kill comes first.
	type answer struct {
		deleted []string
		err     error
		took    time.Duration
	}
	answered := make(chan answer, 1)
	deleteSent := time.Now()
	go func() {
		var out struct {
			DeleteUploads struct{ DeletedUploadIds []string }
		}
		err := graphQL(srv.url(), key, `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds } }`,
			map[string]any{"ids": ids}, &out)
		answered <- answer{out.DeleteUploads.DeletedUploadIds, err, time.Since(deleteSent)}
	}()

	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery arrived within 30 s")
	}
	firstArrival := time.Since(deleteSent)
	time.Sleep(200 * time.Millisecond) // the rest of the sender's batch arrives; well within the timeout
	srv.kill()
	killedAt := time.Now()
	heldOpen := rc.arrivals()
	held := len(heldOpen)
	holding.Store(false)
	// Whether deleteUploads answered before the kill or was cut short by
	// it, its transaction had committed (the deliveries are written in it):
	// every upload is deleted.
	var delAnswer answer
	select {
	case delAnswer = <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("deleteUploads neither answered nor failed within 30 s of the kill")
	}
	if delAnswer.err == nil && len(delAnswer.deleted) != uploads {
		t.Fatalf("deleteUploads deleted %d of %d", len(delAnswer.deleted), uploads)
	}
	srv.start()
	restartedIn := time.Since(killedAt)
	if left := srv.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.Upload.Query().Where(upload.IDIn(ids...)).Count(ctx)
	}); left != 0 {
		t.Fatalf("%d of %d uploads left after deleteUploads (answer: %v)", left, uploads, delAnswer.err)
	}

	// Each held delivery must come again, with its webhook-id, after its
	// lease. Decided early if the database shows one not claimed again yet
	// not due until long after its lease, or finished (no longer PENDING)
	// without coming again.
	firstAt := map[string]time.Time{}
	for _, d := range heldOpen {
		firstAt[d.messageID] = d.at
	}
	deadline := killedAt.Add(lease + 15*time.Second)
	var again map[string]time.Time
	decided := ""
	for {
		late := srv.heldDueAfter(keys(firstAt), killedAt.Add(lease+5*time.Second))
		finished := srv.finishedDeliveries(keys(firstAt))
		again = map[string]time.Time{}
		for _, d := range rc.acceptances() { // after reading the database
			if _, ok := firstAt[d.messageID]; ok {
				if _, seen := again[d.messageID]; !seen {
					again[d.messageID] = d.at
				}
			}
		}
		if len(again) == len(firstAt) {
			break
		}
		if late > 0 {
			decided = fmt.Sprintf("%d are not due again until long after their lease", late)
			break
		}
		if lost := slices.DeleteFunc(finished, func(id string) bool { _, ok := again[id]; return ok }); len(lost) > 0 {
			decided = fmt.Sprintf("%d finished without coming again", len(lost))
			break
		}
		if time.Now().After(deadline) {
			decided = "deadline passed"
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var minGap, maxGap time.Duration
	for id, at := range again {
		gap := at.Sub(firstAt[id])
		if minGap == 0 || gap < minGap {
			minGap = gap
		}
		maxGap = max(maxGap, gap)
	}

	// Every event arrives, in order per upload.
	var tl tally
	var missing []string
	for {
		settled := srv.pendingPurges() == 0 && srv.pendingDeliveries() == 0
		tl = rc.tally()
		missing = tl.missing(ids, "upload.deleted", "upload.purged")
		if len(missing) == 0 || settled || decided != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	types := map[string]int{}
	for _, d := range heldOpen {
		types[d.eventType]++
	}
	secondTry := srv.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.WebhookDelivery.Query().Where(webhookdelivery.MessageIDIn(keys(firstAt)...),
			webhookdelivery.StatusEQ(webhookdelivery.StatusDELIVERED), webhookdelivery.Attempts(2)).Count(ctx)
	})
	deleteOutcome := fmt.Sprintf("answered in %s", delAnswer.took.Round(time.Millisecond))
	if delAnswer.err != nil {
		deleteOutcome = "cut short by the kill"
	}
	t.Logf("deleteUploads: first delivery arrived %s after it was sent; its answer: %s",
		firstArrival.Round(time.Millisecond), deleteOutcome)
	t.Logf("FIGURE webhook sender SIGKILLed: %d deliveries %v held open by the receiver when the server was killed; restarted in %s; "+
		"%d of %d came again with the same webhook-id %s–%s after their first arrival (lease %s), %d recorded delivered at their 2nd attempt; "+
		"%d of %d events arrived in all (%d requests, %d duplicates); lost=%d",
		held, types, restartedIn.Round(time.Millisecond), len(again), len(firstAt), minGap.Round(time.Millisecond), maxGap.Round(time.Millisecond), lease,
		secondTry, 2*uploads-len(missing), 2*uploads, tl.requests, tl.duplicates, len(missing))
	if held == 0 {
		t.Fatal("no delivery was held open when the server was killed")
	}
	if len(again) != len(firstAt) {
		t.Errorf("%d of %d held deliveries never came again (%s)", len(firstAt)-len(again), len(firstAt), decided)
	}
	if secondTry != len(firstAt) {
		t.Errorf("%d of %d held deliveries recorded delivered at their 2nd attempt (the 1st never ended)", secondTry, len(firstAt))
	}
	// A retry after a recorded failure would come 0.5–1 s later: half the
	// lease tells the two apart with room for a slow machine.
	if len(again) > 0 && minGap < lease/2 {
		t.Errorf("a held delivery came again %s after it first arrived, long before its lease of %s ran out", minGap, lease)
	}
	if len(missing) > 0 {
		t.Errorf("%d events never arrived: %v", len(missing), first(missing))
	}
	if len(tl.unverified) > 0 {
		t.Errorf("%d requests failed verification: %v", len(tl.unverified), first(tl.unverified))
	}
	if bad := tl.outOfOrder(ids); len(bad) > 0 {
		t.Errorf("upload.purged before upload.deleted for %v", bad)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// finishedDeliveries returns those of messageIDs that are no longer
// PENDING.
func (s *server) finishedDeliveries(messageIDs []string) []string {
	var finished []string
	s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		var err error
		finished, err = client.WebhookDelivery.Query().Where(
			webhookdelivery.MessageIDIn(messageIDs...),
			webhookdelivery.StatusNEQ(webhookdelivery.StatusPENDING),
		).Select(webhookdelivery.FieldMessageID).Strings(ctx)
		return len(finished), err
	})
	return finished
}

// heldDueAfter counts the deliveries among messageIDs that are PENDING,
// not claimed again since their first attempt, and not due until after t.
// A delivery claimed again is left out: its new lease runs past t while its
// second attempt is on its way, which is no sign of trouble.
func (s *server) heldDueAfter(messageIDs []string, t time.Time) int {
	return s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.WebhookDelivery.Query().Where(
			webhookdelivery.MessageIDIn(messageIDs...),
			webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
			webhookdelivery.AttemptsLTE(1),
			webhookdelivery.NextAttemptAtGT(t),
		).Count(ctx)
	})
}
