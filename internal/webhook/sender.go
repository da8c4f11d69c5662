package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/metrics"
	"github.com/safedelete/uploads/internal/queue"
	"github.com/safedelete/uploads/internal/tracing"
)

// The sender's defaults, for internal/config.
const (
	DefaultPollInterval = time.Second
	// DefaultConcurrency is how many deliveries a sender has claimed at
	// most. A worker waits for the commit that records its outcome, and on
	// SQLite that commit waits for the one writer's turn, which the
	// deletes' group commit takes in between: each turn records at most
	// one outcome per worker, and each delete queues two deliveries, so
	// the workers must outnumber twice the deletes of a group commit (up
	// to one per caller). With 16 workers the deliveries fell behind 1,300
	// deletes a second (0.75 of their pace); with 128 they kept pace for
	// 16 owners, and one owner alone (claiming all but a share: see
	// ownerClaims) reached 0.92; with 256, 1.00 (issue 26,
	// docs/scale.md). What one endpoint is sent at once does not grow with
	// them (ownerBase, gate).
	DefaultConcurrency = 256
	DefaultTimeout     = 10 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultRetryWindow = 72 * time.Hour // about three days
)

// Fixed behaviour, not settings.
const (
	firstBackoff    = time.Second // delay after the first failure
	maxResponseBody = 4 << 10     // bytes of a receiver's answer read, at most
	maxErrorLength  = 300         // characters of last_error
	// UserAgent names the service in every delivery.
	UserAgent = "safedelete-uploads-webhooks/1"
)

// Options are the sender's settings; zero means the default.
type Options struct {
	PollInterval time.Duration // how often Run looks for due deliveries
	Concurrency  int           // deliveries sent at once, at most
	Timeout      time.Duration // bounds one attempt: connecting, sending, the answer
	MaxBackoff   time.Duration // longest wait between attempts of one delivery
	// RetryWindow is how long after its creation a delivery is retried.
	// Once it has passed, a failed attempt makes the delivery FAILED and
	// disables its endpoint, unless another delivery reached the endpoint
	// since this one was created (then only this message is refused).
	RetryWindow time.Duration
	// AllowPrivateNetworks lets deliveries reach loopback and private
	// addresses: for development and tests, never for users' endpoints.
	AllowPrivateNetworks bool
	// AllowHTTP lets deliveries go to http:// endpoints; without it, an
	// endpoint registered over http while it was allowed gets nothing.
	AllowHTTP bool
	Metrics   *metrics.Metrics
	// Tracer traces each attempt in the trace of the request that queued
	// the delivery, and sends its traceparent; nil traces none.
	Tracer *tracing.Tracer
}

// Sender sends due deliveries.
type Sender struct {
	client *ent.Client
	sealer *Sealer
	logger *slog.Logger
	opts   Options
	http   *http.Client
	// outcomes records attempts' outcomes, several in one transaction,
	// and claims there the next deliveries of the workers that go on.
	outcomes *outcomes
	// gate holds an owner's attempts beyond its spare, for aheadWait at
	// most (see enter).
	gate         *gate
	aheadWait    time.Duration
	promptAnswer time.Duration // promptAnswer, but in tests
	// claiming is held by each claim from its read to its count of the
	// attempts it took (see pickDue).
	claiming sync.Mutex
	// ahead are due deliveries the last read found and no claim picked,
	// read at aheadAt (see pickDue); held under claiming.
	ahead        []*ent.WebhookDelivery
	aheadAt      time.Time
	aheadSawAll  bool          // that read found fewer than its limit: every due delivery
	readAheadFor time.Duration // readAheadFor, but in tests
	// claimApart makes Run's workers claim apart from their outcomes, as
	// before issue 26: the baseline of BenchmarkSenderDrain (tests only).
	claimApart bool

	mu sync.Mutex
	// This sender's attempts in flight, by endpoint and by owner (see
	// pick), each endpoint's attempts in a row that got no answer (see
	// noAnswer), and the endpoints whose last attempt got one.
	endpointLoad, ownerLoad map[string]int
	silences                map[string]int
	answering               map[string]string // endpoint id -> owner id
	prompt                  map[string]bool   // of those, the ones whose last answer was prompt
}

// NewSender returns a Sender.
func NewSender(client *ent.Client, sealer *Sealer, logger *slog.Logger, opts Options) *Sender {
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.Concurrency, DefaultConcurrency)
	setDefault(&opts.Timeout, DefaultTimeout)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	setDefault(&opts.RetryWindow, DefaultRetryWindow)
	s := &Sender{
		client: client, sealer: sealer, logger: logger, opts: opts, http: newHTTPClient(opts),
		endpointLoad: map[string]int{}, ownerLoad: map[string]int{}, silences: map[string]int{},
		answering: map[string]string{}, prompt: map[string]bool{}, readAheadFor: readAheadFor,
		promptAnswer: promptAnswer, aheadWait: aheadWait,
	}
	s.gate = newGate(s.ownerSpare())
	s.outcomes = &outcomes{client: client, sender: s}
	return s
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// lease is how long a claim lasts. A claim waits for its turn aheadWait at
// most (see enter), and its attempt ends within Timeout; the rest is room
// to record its outcome. A claim whose holder died expires after
// it, and the delivery is sent again (with the same webhook-id).
func (s *Sender) lease() time.Duration { return s.aheadWait + 3*s.opts.Timeout }

// QueueKind names deliveries in the queue's wake-ups.
const QueueKind = "webhook"

// Run sends due deliveries until ctx is cancelled, Concurrency at a time:
// a worker whose attempt got an answer takes its next delivery from the
// commit that records the outcome (see outcomes), and for workers that
// stop it claims more at once; otherwise it looks every PollInterval and
// whenever wake receives (a delivery was enqueued: see
// queue.Queue.WakeOnDue). A slow endpoint holds only its own workers (see
// pick), never a whole pass of everyone's. Run returns once its attempts
// ended.
func (s *Sender) Run(ctx context.Context, wake <-chan struct{}) {
	queue.Work(ctx, s.opts.Concurrency, s.opts.PollInterval, wake, s.claim,
		func(err error) { s.logger.ErrorContext(ctx, "webhook claim failed", "error", err) },
		func(ctx context.Context, d *ent.WebhookDelivery) {
			for d != nil {
				_, d = s.attemptThen(ctx, d, !s.claimApart)
			}
		})
}

// RunOnce claims up to Concurrency due deliveries, as fairly as Run does,
// sends them all at once and waits for them. It returns how many it
// attempted and how many were delivered.
func (s *Sender) RunOnce(ctx context.Context) (attempted, delivered int, err error) {
	claimed, err := s.claim(ctx, s.opts.Concurrency)
	if err != nil || len(claimed) == 0 {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for _, d := range claimed {
		wg.Go(func() {
			if s.attempt(ctx, d) {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return len(claimed), int(ok.Load()), nil
}

// attempt sends a claimed delivery once and records the outcome. It
// reports whether the receiver accepted it.
func (s *Sender) attempt(ctx context.Context, d *ent.WebhookDelivery) bool {
	ok, _ := s.attemptThen(ctx, d, false)
	return ok
}

// attemptThen is attempt; with more, and if the endpoint answered and the
// sender is not stopping, the commit that records the outcome also claims
// the delivery this worker sends next, which it returns (nil if none is
// due). An endpoint that did not answer gets its breaker's postponement
// first (noAnswer), so the worker stops and the next claim sees it.
func (s *Sender) attemptThen(ctx context.Context, d *ent.WebhookDelivery, more bool) (ok bool, next *ent.WebhookDelivery) {
	released := false
	release := func() {
		if !released {
			released = true
			s.release(d)
		}
	}
	defer release()
	ctx, span := s.opts.Tracer.Resume(ctx, d.Traceparent, "webhook delivery")
	defer span.End()
	endpoint := d.Edges.Endpoint
	// Checked again at each attempt: an http endpoint registered while
	// WEBHOOK_ALLOW_HTTP was true gets nothing once it is false.
	if err := ValidateURL(endpoint.URL, s.opts.AllowHTTP); err != nil {
		s.failed(ctx, d, 0, "not sent: "+err.Error()+"; register an https URL instead", false)
		s.noAnswer(ctx, endpoint.ID)
		return false, nil
	}
	secret, err := s.sealer.Open(endpoint.ID, endpoint.Secret)
	if err != nil {
		s.logger.ErrorContext(ctx, "webhook secret", "endpoint_id", endpoint.ID, "error", err)
		s.failed(ctx, d, 0, "not sent: the service cannot read the endpoint's signing secret", false)
		s.noAnswer(ctx, endpoint.ID)
		return false, nil
	}
	if sendAt, ok := s.enter(ctx, endpoint); !ok {
		s.giveBack(ctx, d, sendAt)
		return false, nil
	}
	began := time.Now()
	code, err := s.post(ctx, endpoint.URL, d.MessageID, []byte(d.Payload), secret)
	switch {
	case err != nil && ctx.Err() != nil:
		s.gate.leave(endpoint.OwnerID)
		s.failed(ctx, d, code, "interrupted: the sender stopped", false) // not the receiver's fault
		return false, nil
	case code == 0:
		s.failed(ctx, d, code, s.describe(ctx, endpoint.ID, err), false)
		s.noAnswer(ctx, endpoint.ID)
		s.gate.leave(endpoint.OwnerID) // those waiting now see it silent
		return false, nil
	}
	// An answer: the breaker closes, and the attempt leaves the gate and
	// the loads, before the commit of its outcome claims this worker's
	// next delivery.
	s.answered(endpoint, time.Since(began))
	s.gate.leave(endpoint.OwnerID)
	release()
	more = more && ctx.Err() == nil
	if err != nil {
		return false, s.failed(ctx, d, code, s.describe(ctx, endpoint.ID, err), more)
	}
	return true, s.delivered(ctx, d, code, more)
}

// enter waits for the owner's gate (see gate): no more than its spare
// are sent to one owner's endpoints at once. It reports whether the
// delivery goes now; if not, it is given back, due at sendAt:
//   - the sender stopped: at once, for the next sender;
//   - its endpoint stopped answering while it waited: after the
//     breaker's backoff, as the breaker postponed the others;
//   - it waited aheadWait: the owner's attempts are slow or hang, and the
//     workers its claims hold are kept from other owners. It is due at
//     once, and the endpoint is claimed no further ahead (its owner's
//     spare) until an attempt gets a prompt answer.
func (s *Sender) enter(ctx context.Context, endpoint *ent.WebhookEndpoint) (sendAt time.Time, ok bool) {
	wait, cancel := context.WithTimeout(ctx, s.aheadWait)
	defer cancel()
	waited, err := s.gate.enter(wait, endpoint.OwnerID)
	if err == nil && !waited {
		return time.Time{}, true
	}
	stopped := ctx.Err() != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	silences := s.silences[endpoint.ID]
	if err == nil && !stopped && silences == 0 {
		return time.Time{}, true
	}
	if err == nil {
		s.gate.leave(endpoint.OwnerID)
	}
	switch {
	case stopped:
		return time.Now(), false
	case silences > 0:
		return s.postponedUntil(silences), false
	}
	delete(s.prompt, endpoint.ID) // it waited aheadWait
	return time.Now(), false
}

// post makes one attempt: a POST signed as Standard Webhooks has it, with
// this attempt's timestamp. It returns the status code, and an error
// unless it is 2xx.
func (s *Sender) post(ctx context.Context, endpointURL, messageID string, body, secret []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpointURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	timestamp := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("webhook-id", messageID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(timestamp, 10))
	req.Header.Set("webhook-signature", sign(secret, messageID, timestamp, body))
	tracing.Inject(ctx, req.Header) // the attempt's span, when traced
	res, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	// A little is read, so that a short answer leaves the connection
	// reusable; a receiver that says more only loses its keep-alive.
	head, _ := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, &statusError{code: res.StatusCode, body: head}
	}
	return res.StatusCode, nil
}

// statusError is an answer other than 2xx.
type statusError struct {
	code int
	body []byte
}

func (e *statusError) Error() string {
	msg := "HTTP " + strconv.Itoa(e.code)
	if e.code >= 300 && e.code <= 399 {
		return msg + " (redirects are not followed)"
	}
	if len(e.body) > 0 {
		msg += ": " + string(e.body)
	}
	return msg
}

// unreachable is last_error for an endpoint whose host cannot be reached:
// one that does not resolve and one that resolves only to addresses
// deliveries may not go to read the same, or last_error would tell anyone
// who registers an endpoint what the service's internal names resolve to.
const unreachable = "could not connect: the endpoint's host has no address deliveries may go to"

// describe words a failed attempt for last_error, which the endpoint's
// owner sees: never the URL, which may hold a token, nor an address its
// host resolved to (the detail is logged).
func (s *Sender) describe(ctx context.Context, endpointID string, err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if urlErr.Timeout() {
			return fmt.Sprintf("timed out after %s", s.opts.Timeout)
		}
		err = urlErr.Err
	}
	var blocked *blockedError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &blocked), errors.As(err, &dnsErr):
		s.logger.WarnContext(ctx, "webhook endpoint unreachable", "endpoint_id", endpointID, "error", err)
		return unreachable
	case errors.As(err, &opErr):
		// "dial tcp 203.0.113.7:443: connect: connection refused", less
		// the addresses.
		s.logger.WarnContext(ctx, "webhook endpoint connection failed", "endpoint_id", endpointID, "error", err)
		return clip(opErr.Op + ": " + opErr.Err.Error())
	}
	return clip(err.Error())
}

// clip makes an error message fit last_error: valid UTF-8 without NUL
// characters (PostgreSQL refuses them in text), at most maxErrorLength
// characters.
func clip(msg string) string {
	msg = strings.ReplaceAll(strings.ToValidUTF8(msg, "?"), "\x00", "?")
	if runes := []rune(msg); len(runes) > maxErrorLength {
		msg = string(runes[:maxErrorLength-1]) + "…"
	}
	return msg
}
