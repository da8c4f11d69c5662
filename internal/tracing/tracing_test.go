package tracing_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/tracing"
)

// TestDeleteTraced: a delete through REST and one through GraphQL each
// make one trace holding the HTTP span, the resolver, SQL, S3's
// DeleteObject and the purge; the GraphQL one, sent with a traceparent,
// continues the caller's trace, and the webhook delivery it causes joins
// it too and carries a traceparent of that trace to the receiver. No
// secret reaches any span.
func TestDeleteTraced(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })

	var mu sync.Mutex
	var received []string // the traceparent headers of webhook deliveries
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	env := testenv.New(t, testenv.Options{Configure: func(cfg *config.Config) {
		cfg.TracerProvider = provider
		cfg.WebhookAllowHTTP = true
		cfg.WebhookAllowPrivateNetworks = true
	}})
	_, apiKey := env.NewUser()
	hook := env.GraphQL(apiKey, `mutation($url: String!) { createWebhookEndpoint(url: $url, events: [DELETED]) { secret } }`,
		map[string]any{"url": receiver.URL})
	var created struct {
		CreateWebhookEndpoint struct{ Secret string }
	}
	if err := hook.Decode(&created); err != nil || created.CreateWebhookEndpoint.Secret == "" {
		t.Fatalf("create webhook endpoint: %v %s", err, hook.Data)
	}

	restUpload := env.MustUpload(apiKey, "rest.txt", []byte("rest"))
	idempotencyKey := "idem-" + fmt.Sprint(time.Now().UnixNano())
	h := http.Header{"X-Api-Key": {apiKey}, "X-Upload-Id": {restUpload.ID}, "Idempotency-Key": {idempotencyKey}}
	if res := env.Do(http.MethodDelete, "/delete-upload-api", h, nil); res.Status != http.StatusOK {
		t.Fatalf("REST delete: %d %s", res.Status, res.Body)
	}
	restTrace := traceOf(t, spans, "DELETE /delete-upload-api")
	wantSpans(t, spans, restTrace, "DELETE /delete-upload-api", "Mutation.deleteUpload", "sql ", "S3.DeleteObject", "purge")

	// The caller's own trace: the request continues it.
	callerTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	graphQLUpload := env.MustUpload(apiKey, "graphql.txt", []byte("graphql"))
	body := fmt.Sprintf(`{"query":"mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }","variables":{"id":%q}}`, graphQLUpload.ID)
	h = http.Header{"X-Api-Key": {apiKey}, "Content-Type": {"application/json"},
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if res := env.Do(http.MethodPost, "/graphql", h, strings.NewReader(body)); res.Status != http.StatusOK || strings.Contains(res.Body, "errors") {
		t.Fatalf("GraphQL delete: %d %s", res.Status, res.Body)
	}
	wantSpans(t, spans, callerTrace, "POST /graphql", "graphql.mutation", "Mutation.deleteUpload", "sql ", "S3.DeleteObject", "purge", "webhook delivery")
	env.Eventually(10*time.Second, "the webhook deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range received {
			if tracing.SpanContext(tp).TraceID() == callerTrace {
				return true
			}
		}
		return false
	})

	creds, err := env.Config.S3Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"API key":           apiKey,
		"webhook secret":    created.CreateWebhookEndpoint.Secret,
		"S3 secret":         creds.SecretAccessKey,
		"Idempotency-Key":   idempotencyKey,
		"database password": databasePassword(env.Config.DatabaseURL),
	}
	dump := fmt.Sprintf("%+v", spans.GetSpans().Snapshots())
	for name, secret := range secrets {
		if secret != "" && strings.Contains(dump, secret) {
			t.Errorf("the %s appears in the exported spans", name)
		}
	}
}

// traceOf waits for the span named name and returns its trace.
func traceOf(t *testing.T, spans *tracetest.InMemoryExporter, name string) trace.TraceID {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range spans.GetSpans() {
			if s.Name == name {
				return s.SpanContext.TraceID()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no span %q; spans: %v", name, names(spans.GetSpans()))
	return trace.TraceID{}
}

// wantSpans waits until the trace holds a span whose name starts with each
// of prefixes.
func wantSpans(t *testing.T, spans *tracetest.InMemoryExporter, traceID trace.TraceID, prefixes ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var missing []string
	for time.Now().Before(deadline) {
		var inTrace tracetest.SpanStubs
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				inTrace = append(inTrace, s)
			}
		}
		missing = missing[:0]
		for _, p := range prefixes {
			found := false
			for _, s := range inTrace {
				found = found || strings.HasPrefix(s.Name, p)
			}
			if !found {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("trace %s has no span %q; all spans: %v", traceID, missing, names(spans.GetSpans()))
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"@"+s.SpanContext.TraceID().String()[:6])
	}
	return out
}

func databasePassword(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}
