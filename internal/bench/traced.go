package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/safedelete/uploads/internal/tracing"
)

// serviceTracedSide is the service again, configured as the service side
// is, with tracing on (-otlp-endpoint).
const serviceTracedSide = "service-traced"

// tracer is the traced side's provider, started as server.go starts it
// when OTEL_EXPORTER_OTLP_ENDPOINT is set, and what it counted.
type tracer struct {
	endpoint string
	provider *sdktrace.TracerProvider
	ended    atomic.Int64 // spans ended, each handed to the batch span processor

	mu        sync.Mutex
	errors    int // reported by the SDK and the exporter (a collector down or refusing)
	lastError error
}

// startTracer starts tracing.Start's provider with endpoint as
// OTEL_EXPORTER_OTLP_ENDPOINT, for the time of the start only (the
// exporter and the SDK read the environment then): the service side, which
// never reads it, is untouched. The other OTEL_* variables of the
// environment apply, as they would to the server: OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_TRACES_SAMPLER (parentbased_always_on when unset: every request the
// load generator sends, which carries no traceparent, is sampled),
// OTEL_BSP_* for batching.
func startTracer(ctx context.Context, endpoint string, cleanups *[]func()) (*tracer, error) {
	restore := setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	restoreTraces := setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") // it would win over the flag
	var provider *sdktrace.TracerProvider
	var err error
	// The batch span processor's goroutine, which encodes and sends the
	// spans, starts here: labelled, its samples count as the traced side's.
	pprof.Do(ctx, pprof.Labels("side", serviceTracedSide, "scenario", "export", "run", serviceTracedSide+"/export"), func(ctx context.Context) {
		provider, err = tracing.Start(ctx, os.LookupEnv, "bench")
	})
	restoreTraces()
	restore()
	if err != nil {
		return nil, err
	}
	t := &tracer{endpoint: endpoint, provider: provider}
	provider.RegisterSpanProcessor(spanCounter{&t.ended})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(t.handle))
	// Appended before the traced service's own, so run after it has closed:
	// the spans of its last work are sent.
	*cleanups = append(*cleanups, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = provider.Shutdown(ctx)
	})
	return t, nil
}

// setenv sets (or, with "", unsets) the variable key and returns what
// puts it back.
func setenv(key, value string) (restore func()) {
	old, had := os.LookupEnv(key)
	if value == "" {
		_ = os.Unsetenv(key)
	} else {
		_ = os.Setenv(key, value)
	}
	return func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	}
}

func (t *tracer) handle(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errors++
	t.lastError = err
}

// spanCounter counts the spans that end.
type spanCounter struct{ ended *atomic.Int64 }

func (spanCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c spanCounter) OnEnd(sdktrace.ReadOnlySpan)                   { c.ended.Add(1) }
func (spanCounter) Shutdown(context.Context) error                  { return nil }
func (spanCounter) ForceFlush(context.Context) error                { return nil }

// printTraced prints the traced side's req/s over the service's in each
// scenario, at each count of callers, then how many spans the traced side
// made per request (the background work the requests queued included) and
// what the exporter reported once the spans still buffered were sent.
func printTraced(w io.Writer, o options, t *tracer, measured []measurement) {
	if t == nil {
		return
	}
	var names []string // the scenarios the traced side ran, in order
	requests := 0
	ratio := map[string]float64{} // by scenario/callers
	for _, m := range measured {
		i := indexOfSide(m.sides, serviceTracedSide)
		if i < 0 {
			continue
		}
		if !slices.Contains(names, m.sc.name) {
			names = append(names, m.sc.name)
		}
		ratio[fmt.Sprintf("%s/%d", m.sc.name, m.callers)] = m.results[i].stats().rps / m.results[0].stats().rps
		requests += m.results[i].requests + o.warmups()
	}
	if len(names) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-22s", "traced/untraced req/s")
	for _, name := range names {
		fmt.Fprintf(w, " %14s", name)
	}
	fmt.Fprintf(w, "   (service-traced req/s over service req/s; OTLP to %s)\n", t.endpoint)
	for _, c := range o.callers {
		fmt.Fprintf(w, "%-22s", fmt.Sprintf("%d callers", c))
		for _, name := range names {
			if r, ok := ratio[fmt.Sprintf("%s/%d", name, c)]; ok {
				fmt.Fprintf(w, " %13.2fx", r)
			} else {
				fmt.Fprintf(w, " %14s", "-")
			}
		}
		fmt.Fprintln(w)
	}
	flushed := t.provider.ForceFlush(context.Background())
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "%s: %d spans ended, %.1f per request (warm-ups and the work the requests queued included); %d export errors",
		serviceTracedSide, t.ended.Load(), float64(t.ended.Load())/float64(max(requests, 1)), t.errors)
	if t.lastError != nil {
		fmt.Fprintf(w, ", last: %v", t.lastError)
	}
	if flushed != nil {
		fmt.Fprintf(w, "; final flush: %v", flushed)
	}
	fmt.Fprintln(w)
}

func indexOfSide(sides []string, name string) int {
	for i, s := range sides {
		if s == name {
			return i
		}
	}
	return -1
}

// tracedSetup says how the traced side traces.
func tracedSetup(t *tracer) string {
	get := func(key, unset string) string {
		if v := strings.TrimSpace(os.Getenv(key)); v != "" {
			return v
		}
		return unset
	}
	return fmt.Sprintf("%s: the service as above, with tracing on (internal/tracing.Start): OTLP %s to %s, sampler %s, batch span processor queue %s, batch %s, delay %s ms (OTEL_BSP_*)",
		serviceTracedSide, get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), t.endpoint,
		get("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
		get("OTEL_BSP_MAX_QUEUE_SIZE", fmt.Sprint(sdktrace.DefaultMaxQueueSize)),
		get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", fmt.Sprint(sdktrace.DefaultMaxExportBatchSize)),
		get("OTEL_BSP_SCHEDULE_DELAY", fmt.Sprint(sdktrace.DefaultScheduleDelay)))
}
