package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/webhook"
)

// world is one test's database and sealer.
type world struct {
	t      testing.TB
	url    string // the database, to open it again as another instance would
	client *ent.Client
	sealer *webhook.Sealer
	logs   *testenv.SyncBuffer
}

// newWorld opens a database of the test's own: a SQLite file, or a
// PostgreSQL schema when TEST_DATABASE_URL is set.
func newWorld(t testing.TB) *world {
	t.Helper()
	dbURL := testenv.PostgresSchema(t)
	if dbURL == "" {
		dbURL = database.SQLiteURL(filepath.Join(t.TempDir(), "webhook.db"))
	}
	return newWorldOn(t, dbURL)
}

// newWorldOn is newWorld on the database at dbURL.
func newWorldOn(t testing.TB, dbURL string) *world {
	t.Helper()
	w := &world{t: t, url: dbURL, client: openClient(t, dbURL), logs: &testenv.SyncBuffer{}}
	key := make([]byte, webhook.KeySize)
	_, _ = rand.Read(key)
	sealer, err := webhook.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	w.sealer = sealer
	return w
}

func openClient(t testing.TB, dbURL string) *ent.Client {
	t.Helper()
	client, err := database.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// sender returns a sender on the world's database that may reach the
// test's loopback receivers (over http) unless opts says otherwise.
func (w *world) sender(opts webhook.Options) *webhook.Sender {
	return w.senderOn(w.client, opts)
}

func (w *world) senderOn(client *ent.Client, opts webhook.Options) *webhook.Sender {
	opts.AllowHTTP = true // the receivers are httptest servers
	return webhook.NewSender(client, w.sealer, w.logger(), opts)
}

// logger writes to the world's logs, which its tests search for secrets.
func (w *world) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// endpoint registers url for a new owner and returns the owner, the
// endpoint and its secret.
func (w *world) endpoint(url string, events ...string) (ownerID string, ep *ent.WebhookEndpoint, secret string) {
	w.t.Helper()
	ownerID = ids.NewUser()
	ep, secret = w.endpointOf(ownerID, url, events...)
	return ownerID, ep, secret
}

// endpointOf registers url for ownerID and returns the endpoint and its
// secret.
func (w *world) endpointOf(ownerID, url string, events ...string) (ep *ent.WebhookEndpoint, secret string) {
	w.t.Helper()
	ep, secret, err := webhook.CreateEndpoint(context.Background(), w.client, w.sealer, ownerID, url, events, true)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		if strings.Contains(w.logs.String(), strings.TrimPrefix(secret, "whsec_")) {
			w.t.Error("a signing secret was logged")
		}
		if strings.Contains(w.logs.String(), urlToken) {
			w.t.Error("an endpoint URL's token was logged")
		}
	})
	return ep, secret
}

// enqueue enqueues events in a transaction of their own and commits it.
func (w *world) enqueue(events ...webhook.Event) {
	w.t.Helper()
	err := database.WithTx(context.Background(), w.client, func(tx *ent.Tx) error {
		return webhook.Enqueue(context.Background(), tx, events...)
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// deliveries returns every delivery, in id order.
func (w *world) deliveries() []*ent.WebhookDelivery {
	w.t.Helper()
	all, err := w.client.WebhookDelivery.Query().Order(ent.Asc("id")).All(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return all
}

func (w *world) delivery(id int) *ent.WebhookDelivery {
	w.t.Helper()
	d, err := w.client.WebhookDelivery.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func event(eventType, ownerID, uploadID string) webhook.Event {
	return webhook.Event{
		Type: eventType, OwnerID: ownerID, UploadID: uploadID, Time: time.Now(),
		Data: webhook.UploadData{ID: uploadID, Filename: "report.pdf", Size: 123, Status: "COMPLETED"},
	}
}

// arrival is one request a receiver got.
type arrival struct {
	ID, Type, UploadID string
	Method             string
	Header             http.Header
	Body               []byte
	Verified           bool
	Status             int // what the receiver answered; 0: it dropped the connection
}

// urlToken is in every receiver's URL, as a receiver's own credential
// may be: it must never be logged nor shown in an error.
const urlToken = "url-token-7f3a"

// Answers a receiver can give besides a status code.
const (
	dropConnection = -1 // close the connection without a word
	hugeBody       = -2 // 200, then 256 MiB of body
	tricklingBody  = -3 // 200, then a byte of body every 20 ms, for 4 s
)

// receiver is an HTTP server that verifies every request with the
// Standard Webhooks library, keeps what it got, and answers as told.
type receiver struct {
	t        *testing.T
	URL      string
	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	answer   func(arrival) int // nil: 204
	location string            // the Location of the answer, if any
	arrivals []arrival
	inFlight map[string]bool
	overlaps []string // webhook-ids received while an attempt of the same was in flight
	hungUp   int      // bodies the sender stopped reading before their end
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, inFlight: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks?token=" + urlToken
	return r
}

// trust makes the receiver verify with secret.
func (r *receiver) trust(secret string) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.verifier = wh
	r.mu.Unlock()
}

func (r *receiver) setAnswer(answer func(arrival) int) {
	r.mu.Lock()
	r.answer = answer
	r.mu.Unlock()
}

// redirectTo makes the receiver answer every request with a redirect.
func (r *receiver) redirectTo(location string, code int) {
	r.mu.Lock()
	r.location = location
	r.mu.Unlock()
	r.setAnswer(func(arrival) int { return code })
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	payload, _ := io.ReadAll(req.Body)
	var p struct {
		Type string
		Data struct{ ID string }
	}
	_ = json.Unmarshal(payload, &p)
	a := arrival{ID: req.Header.Get("webhook-id"), Type: p.Type, UploadID: p.Data.ID, Method: req.Method, Header: req.Header, Body: payload}
	r.mu.Lock()
	if r.inFlight[a.ID] {
		r.overlaps = append(r.overlaps, a.ID)
	}
	r.inFlight[a.ID] = true
	verifier, answer, location := r.verifier, r.answer, r.location
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inFlight, a.ID)
		r.mu.Unlock()
	}()

	a.Verified = verifier != nil && verifier.Verify(payload, req.Header) == nil
	status := http.StatusNoContent
	switch {
	case !a.Verified:
		status = http.StatusBadRequest
	case answer != nil:
		status = answer(a)
	}
	body := status
	switch status {
	case dropConnection:
		status = 0
	case hugeBody, tricklingBody:
		status = http.StatusOK
	}
	a.Status = status
	r.mu.Lock()
	r.arrivals = append(r.arrivals, a) // before answering: the order is the order of arrival
	r.mu.Unlock()
	if status == 0 {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if location != "" {
		w.Header().Set("Location", location)
	}
	w.WriteHeader(status)
	r.writeBody(w, body)
}

// writeBody writes the body of an answer: a huge or trickling one if told
// so, and counts the sender hanging up before its end.
func (r *receiver) writeBody(w http.ResponseWriter, body int) {
	var chunk []byte
	var chunks int
	var pause time.Duration
	switch body {
	case hugeBody:
		chunk, chunks = make([]byte, 32<<10), 8<<10
	case tricklingBody:
		chunk, chunks, pause = []byte("x"), 200, 20*time.Millisecond
	}
	for range chunks {
		_, err := w.Write(chunk)
		if err == nil {
			err = http.NewResponseController(w).Flush()
		}
		if err != nil {
			r.mu.Lock()
			r.hungUp++
			r.mu.Unlock()
			return
		}
		time.Sleep(pause)
	}
}

// hangUps returns how many answers the sender stopped reading early.
func (r *receiver) hangUps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hungUp
}

// got returns a copy of what the receiver got so far.
func (r *receiver) got() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.arrivals...)
}

func (r *receiver) overlapping() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.overlaps...)
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
