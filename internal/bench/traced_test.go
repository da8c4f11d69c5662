package main

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestRunTraced runs the scenarios with -otlp-endpoint pointing at an OTLP
// HTTP receiver of the test's, which counts the spans it gets: the traced
// side's every request must arrive there as a server span, with the
// resolver, SQL, S3 and purge spans beside them, and the service side's
// none (it is not traced); and the output must give traced/untraced for
// each scenario at each count of callers.
func TestRunTraced(t *testing.T) {
	// No t.Parallel: run sets OTEL_EXPORTER_OTLP_ENDPOINT while it starts
	// the traced side's exporter. A queue that holds every span of the run:
	// none is dropped, so every request can be counted.
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100000")
	var mu sync.Mutex
	spans := map[string]int{} // by name
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if r.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, "want an OTLP export on /v1/traces", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans[s.GetName()]++
				}
			}
		}
		mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(receiver.Close)

	var out strings.Builder
	args := []string{"-n", "24", "-c", "2,4", "-rounds", "4", "-scenarios", "rest-delete,rest-404,graphql", "-otlp-endpoint", receiver.URL}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "error:") {
		t.Errorf("requests failed:\n%s", out.String())
	}
	// A row of the traced side and its ratio per scenario and count.
	if n := strings.Count(out.String(), "\n"+strings.Repeat(" ", 31)+"service-traced "); n != 6 {
		t.Errorf("%d rows of service-traced, want 6 (3 scenarios, 2 counts of callers) in:\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), " traced/untraced "); n != 6 {
		t.Errorf("%d traced/untraced ratios, want 6 in:\n%s", n, out.String())
	}
	table := out.String()[strings.Index(out.String(), "\ntraced/untraced req/s")+1:]
	for i, c := range []string{"2", "4"} {
		if line := lineOf(table, c+" callers "); strings.Count(line, "x") != 3 {
			t.Errorf("traced/untraced table: no three ratios at %s callers (row %d) in:\n%s", c, i, out.String())
		}
	}
	for _, want := range []string{"queue 100000", "; 0 export errors"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}

	// run has shut the provider down: every span has been sent. Each
	// request the traced side answered (warm-ups of 4 included) is one
	// server span; the untraced side's would double the count.
	mu.Lock()
	defer mu.Unlock()
	const restRequests = (24+4)*2 + (5*24+4)*2 // rest-delete and rest-404, at 2 and 4 callers
	const graphQLRequests = (24 + 4) * 2
	if spans["DELETE /delete-upload-api"] != restRequests || spans["POST /graphql"] != graphQLRequests {
		t.Errorf("the receiver got %d REST and %d GraphQL server spans, want %d and %d (one per request of service-traced); spans: %v",
			spans["DELETE /delete-upload-api"], spans["POST /graphql"], restRequests, graphQLRequests, spans)
	}
	for _, prefix := range []string{"Mutation.deleteUpload", "graphql.mutation", "sql ", "S3.DeleteObject", "purge"} {
		found := false
		for name := range spans {
			found = found || strings.HasPrefix(name, prefix)
		}
		if !found {
			t.Errorf("no %q span among %v", prefix, spans)
		}
	}
}
