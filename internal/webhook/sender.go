package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/metrics"
)

// The sender's defaults, for internal/config.
const (
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 16
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultRetryWindow  = 72 * time.Hour // about three days
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
	Concurrency  int           // deliveries claimed and sent at once
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
	Metrics              *metrics.Metrics
}

// Sender sends due deliveries.
type Sender struct {
	client *ent.Client
	sealer *Sealer
	logger *slog.Logger
	opts   Options
	http   *http.Client
}

// NewSender returns a Sender.
func NewSender(client *ent.Client, sealer *Sealer, logger *slog.Logger, opts Options) *Sender {
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.Concurrency, DefaultConcurrency)
	setDefault(&opts.Timeout, DefaultTimeout)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	setDefault(&opts.RetryWindow, DefaultRetryWindow)
	return &Sender{client: client, sealer: sealer, logger: logger, opts: opts, http: newHTTPClient(opts)}
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// lease is how long a claim lasts. An attempt ends within Timeout; the rest
// is room to record its outcome. A claim whose holder died expires after
// it, and the delivery is sent again (with the same webhook-id).
func (s *Sender) lease() time.Duration { return 3 * s.opts.Timeout }

// Run sends due deliveries every PollInterval until ctx is cancelled. After
// a full batch it goes on at once, so a backlog drains without waiting.
func (s *Sender) Run(ctx context.Context) {
	ticker := time.NewTicker(s.opts.PollInterval)
	defer ticker.Stop()
	for {
		attempted, _, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.ErrorContext(ctx, "webhook pass failed", "error", err)
		}
		if err == nil && attempted == s.opts.Concurrency {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunOnce claims up to Concurrency due deliveries and sends them, all at
// once. It returns how many it attempted and how many were delivered.
func (s *Sender) RunOnce(ctx context.Context) (attempted, delivered int, err error) {
	claimed, err := s.claim(ctx)
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

// claim takes due deliveries, with their endpoints, for one lease.
// Deliveries to disabled endpoints are not due, nor those waiting for an
// earlier one (see firstPendingOfUpload).
func (s *Sender) claim(ctx context.Context) ([]*ent.WebhookDelivery, error) {
	now := time.Now()
	due, err := s.client.WebhookDelivery.Query().
		Where(
			webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
			webhookdelivery.NextAttemptAtLTE(now),
			webhookdelivery.HasEndpointWith(webhookendpoint.DisabledAtIsNil()),
			firstPendingOfUpload(),
		).
		WithEndpoint().
		Order(webhookdelivery.ByNextAttemptAt(), webhookdelivery.ByID()).
		Limit(s.opts.Concurrency).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", err)
	}
	return s.take(ctx, due, now)
}

// take claims, in one transaction, each of the deliveries that is still due
// at now, by moving its next_attempt_at a lease forward, and returns those
// it took: one that is not was claimed by another sender since it was read.
func (s *Sender) take(ctx context.Context, due []*ent.WebhookDelivery, now time.Time) ([]*ent.WebhookDelivery, error) {
	if len(due) == 0 {
		return nil, nil
	}
	leaseEnd := time.Now().Add(s.lease())
	var claimed []*ent.WebhookDelivery
	err := database.WithTx(ctx, s.client, func(tx *ent.Tx) error {
		for _, d := range due {
			if d.Edges.Endpoint == nil {
				continue // deleted since, with its deliveries
			}
			n, err := tx.WebhookDelivery.Update().
				Where(
					webhookdelivery.ID(d.ID),
					webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING),
					webhookdelivery.NextAttemptAtLTE(now),
				).
				SetNextAttemptAt(leaseEnd).
				AddAttempts(1).
				Save(ctx)
			if err != nil {
				return err
			}
			if n == 1 {
				// As read plus one: nobody claimed it in between, or it
				// would not be due. Also the claim's token (stillClaimed).
				d.Attempts++
				claimed = append(claimed, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d deliveries: %w", len(due), err)
	}
	return claimed, nil
}

// firstPendingOfUpload keeps a delivery back while an earlier one (a lower
// id) of the same upload to the same endpoint is PENDING, whether due,
// backing off or in flight: a receiver hears of an upload's events in
// order (deleted before purged), across retries. Other uploads' deliveries
// do not wait. Ids are handed out at INSERT: the order is that of Enqueue
// calls, which for one upload follow each other (each change of an upload
// commits before the next begins).
func firstPendingOfUpload() predicate.WebhookDelivery {
	return func(s *sql.Selector) {
		earlier := sql.Table(webhookdelivery.Table).As("earlier")
		s.Where(sql.NotExists(
			sql.Dialect(s.Dialect()).Select(earlier.C(webhookdelivery.FieldID)).From(earlier).Where(sql.And(
				sql.ColumnsEQ(earlier.C(webhookdelivery.FieldEndpointID), s.C(webhookdelivery.FieldEndpointID)),
				sql.ColumnsEQ(earlier.C(webhookdelivery.FieldUploadID), s.C(webhookdelivery.FieldUploadID)),
				sql.EQ(earlier.C(webhookdelivery.FieldStatus), webhookdelivery.StatusPENDING),
				sql.ColumnsLT(earlier.C(webhookdelivery.FieldID), s.C(webhookdelivery.FieldID)),
			)),
		))
	}
}

// attempt sends a claimed delivery once and records the outcome. It
// reports whether the receiver accepted it.
func (s *Sender) attempt(ctx context.Context, d *ent.WebhookDelivery) bool {
	endpoint := d.Edges.Endpoint
	secret, err := s.sealer.Open(endpoint.ID, endpoint.Secret)
	if err != nil {
		s.logger.ErrorContext(ctx, "webhook secret", "endpoint_id", endpoint.ID, "error", err)
		s.failed(ctx, d, 0, err.Error())
		return false
	}
	code, err := s.post(ctx, endpoint.URL, d.MessageID, []byte(d.Payload), secret)
	if err != nil {
		msg := s.describe(err)
		if ctx.Err() != nil {
			msg = "interrupted: the sender stopped" // not the receiver's fault
		}
		s.failed(ctx, d, code, msg)
		return false
	}
	s.delivered(ctx, d, code)
	return true
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

// describe words a failed attempt for last_error, which the endpoint's
// owner sees: never the URL, which may hold a token.
func (s *Sender) describe(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if urlErr.Timeout() {
			return fmt.Sprintf("timed out after %s", s.opts.Timeout)
		}
		err = urlErr.Err
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
