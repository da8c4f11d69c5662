package tracing_test

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/tracing"
)

// TestQueuedPurgeJoinsTheTrace: the purge of a delete whose object S3
// would not remove stays queued naming the delete's trace, so that the
// retry, on whichever instance, joins it.
func TestQueuedPurgeJoinsTheTrace(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(cfg *config.Config) { cfg.TracerProvider = provider }})
	_, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))

	env.S3.SetMode(faultproxy.Unavailable)
	if res := env.DeleteREST(key, u.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	deleteTrace := traceOf(t, spans, "DELETE /delete-upload-api")
	queued, err := env.Client().ObjectPurge.Query().Where(objectpurge.UploadID(u.ID)).Only(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := tracing.SpanContext(queued.Traceparent).TraceID(); got != deleteTrace {
		t.Errorf("the queued purge's traceparent %q is of trace %s, want the delete's, %s", queued.Traceparent, got, deleteTrace)
	}
}
