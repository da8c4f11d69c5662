// Package metrics defines the service's Prometheus metrics. A nil *Metrics
// records nothing, so that packages can be used without it.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	deletes         *prometheus.CounterVec
	purgeAttempts   prometheus.Counter
	purgeFailures   prometheus.Counter
	s3Duration      *prometheus.HistogramVec
	janitor         *prometheus.CounterVec
	webhooks        *prometheus.CounterVec
	leader          prometheus.Gauge
	idempotency     *prometheus.CounterVec
	idempotentPrune prometheus.Counter
	deletionJobs    *prometheus.CounterVec
	legalHolds      *prometheus.CounterVec

	// Every request is counted and timed, and every delete counted: the
	// children of the vectors are kept here by label, since looking one up
	// by its label values hashes them (and formats the status) each time.
	requestChildren children[routeStatus, requestObservers]
	deleteChildren  children[string, prometheus.Counter]
}

type routeStatus struct {
	route  string
	status int
}

type requestObservers struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// children is a memo of a metric vector's children by label. The labels a
// service uses are few (routes, statuses, outcomes), so it only grows to
// that size.
type children[K comparable, V any] struct {
	mu   sync.RWMutex
	byID map[K]V
}

// get returns the child of id, made by create the first time.
func (c *children[K, V]) get(id K, create func() V) V {
	c.mu.RLock()
	v, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.byID[id]; ok {
		return v
	}
	if c.byID == nil {
		c.byID = map[K]V{}
	}
	v = create()
	c.byID[id] = v
	return v
}

// QueueStats reports the purge backlog: how many purges are overdue (due,
// or failed and backing off) and how long the one due longest has been due.
type QueueStats func(ctx context.Context) (overdue int, dueFor time.Duration, err error)

// New registers the service's metrics, the Go runtime's and the process's.
func New(queue QueueStats) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "uploads_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		deletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_deletes_total", Help: "deleteUpload calls (GraphQL and REST) by outcome.",
		}, []string{"outcome"}),
		purgeAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uploads_purge_attempts_total", Help: "Attempts to remove a deleted upload's object.",
		}),
		purgeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uploads_purge_failures_total", Help: "Purge attempts that failed and will be retried.",
		}),
		s3Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "uploads_s3_request_duration_seconds", Help: "S3 operation latency, retries included.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation", "outcome"}),
		janitor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_janitor_uploads_total", Help: "Uploads the janitor settled: stuck ones marked failed, expired failed ones deleted.",
		}, []string{"action"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_webhook_attempts_total", Help: "Webhook delivery attempts by outcome: delivered, retry (failed, will be retried), failed (failed for good).",
		}, []string{"outcome"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "uploads_leader", Help: "1 while this instance is the one that runs periodic work (the janitor), else 0.",
		}),
		idempotency: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_idempotency_requests_total", Help: "Requests sent with an Idempotency-Key by outcome: claimed (ran), replayed (answered from the store), reused (422), in_use (409), narrower (a narrower credential refused), invalid (400); then stored (answer kept) or released (answer not final).",
		}, []string{"outcome"}),
		deletionJobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_deletion_jobs_total", Help: "Deletion jobs by status: queued (started), then succeeded, failed or canceled (ended).",
		}, []string{"status"}),
		legalHolds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploads_legal_hold_syncs_total", Help: "Legal holds mirrored to the bucket's Object Lock, by outcome: on, off, unlocked (the bucket has no Object Lock), retry (failed, will be retried).",
		}, []string{"outcome"}),
		idempotentPrune: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "uploads_idempotency_keys_pruned_total", Help: "Stored idempotent answers the janitor pruned past IDEMPOTENCY_RETENTION.",
		}),
	}
	reg.MustRegister(m.requests, m.requestDuration, m.deletes, m.purgeAttempts, m.purgeFailures, m.s3Duration, m.janitor, m.webhooks, m.leader, m.idempotency, m.idempotentPrune, m.deletionJobs, m.legalHolds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queue != nil {
		reg.MustRegister(&queueCollector{stats: queue})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ObserveRequest records one served request.
func (m *Metrics) ObserveRequest(route string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	o := m.requestChildren.get(routeStatus{route, status}, func() requestObservers {
		return requestObservers{
			count:    m.requests.WithLabelValues(route, strconv.Itoa(status)),
			duration: m.requestDuration.WithLabelValues(route),
		}
	})
	o.count.Inc()
	o.duration.Observe(elapsed.Seconds())
}

// Delete records the outcome of a deleteUpload call.
func (m *Metrics) Delete(outcome string) {
	if m != nil {
		m.deleteChildren.get(outcome, func() prometheus.Counter { return m.deletes.WithLabelValues(outcome) }).Inc()
	}
}

// PurgeAttempt records one purge attempt and whether it failed.
func (m *Metrics) PurgeAttempt(err error) {
	if m == nil {
		return
	}
	m.purgeAttempts.Inc()
	if err != nil {
		m.purgeFailures.Inc()
	}
}

// Janitor records n uploads the janitor settled by action ("failed",
// "expired").
func (m *Metrics) Janitor(action string, n int) {
	if m != nil {
		m.janitor.WithLabelValues(action).Add(float64(n))
	}
}

// Leader records whether this instance leads (runs periodic work).
func (m *Metrics) Leader(leads bool) {
	if m != nil {
		m.leader.Set(map[bool]float64{false: 0, true: 1}[leads])
	}
}

// Idempotency records what became of a request sent with an
// Idempotency-Key.
func (m *Metrics) Idempotency(outcome string) {
	if m != nil {
		m.idempotency.WithLabelValues(outcome).Inc()
	}
}

// IdempotencyPruned records n stored answers pruned.
func (m *Metrics) IdempotencyPruned(n int) {
	if m != nil {
		m.idempotentPrune.Add(float64(n))
	}
}

// DeletionJob records a deletion job started ("queued") or ended
// ("succeeded", "failed", "canceled").
func (m *Metrics) DeletionJob(status string) {
	if m != nil {
		m.deletionJobs.WithLabelValues(status).Inc()
	}
}

// LegalHoldSync records one attempt to mirror a legal hold to the bucket
// by outcome ("on", "off", "unlocked", "retry").
func (m *Metrics) LegalHoldSync(outcome string) {
	if m != nil {
		m.legalHolds.WithLabelValues(outcome).Inc()
	}
}

// WebhookDelivery records one webhook delivery attempt by outcome
// ("delivered", "retry", "failed").
func (m *Metrics) WebhookDelivery(outcome string) {
	if m != nil {
		m.webhooks.WithLabelValues(outcome).Inc()
	}
}

// S3APIOption times every S3 operation; add it to the client's APIOptions.
func (m *Metrics) S3APIOption(stack *middleware.Stack) error {
	if m == nil {
		return nil
	}
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("UploadsMetrics",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			began := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			m.s3Duration.WithLabelValues(awsmiddleware.GetOperationName(ctx), outcome).Observe(time.Since(began).Seconds())
			return out, md, err
		}), middleware.Before)
}

// queueCollector asks the database for the purge queue's state at each
// scrape, so the figures are the same whichever instance is scraped.
type queueCollector struct{ stats QueueStats }

var (
	queueDepthDesc = prometheus.NewDesc("uploads_purge_queue_depth",
		"Purges overdue: due, or failed and waiting to retry (not those waiting out the trash window or an upload still storing).", nil, nil)
	queueAgeDesc = prometheus.NewDesc("uploads_purge_queue_oldest_age_seconds",
		"How long the purge due longest has been due (since its scheduled time or the end of its last backoff); 0 when none is due.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pending, oldest, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, oldest.Seconds())
}
