package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"

	"github.com/safedelete/uploads/internal/app"
)

// histogramSum is one series of one of the service's latency histograms:
// how many observations, and their total.
type histogramSum struct {
	series  string // e.g. "S3 DeleteObjects", "HTTP /graphql"
	count   int
	seconds float64
}

// servedSums reads, from the service's own /metrics, how many S3 requests
// of each operation it made and how long they took, and the same for the
// HTTP routes it served.
func servedSums(a *app.App) ([]histogramSum, error) {
	rec := httptest.NewRecorder()
	a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sums := map[string]*histogramSum{}
	var order []string
	for line := range strings.Lines(rec.Body.String()) {
		for _, h := range []struct{ metric, label, prefix string }{
			{"uploads_s3_request_duration_seconds", "operation", "S3 "},
			{"uploads_http_request_duration_seconds", "route", "HTTP "},
		} {
			rest, ok := strings.CutPrefix(line, h.metric+"_")
			if !ok {
				continue
			}
			kind, rest, _ := strings.Cut(rest, "{")
			labels, value, _ := strings.Cut(rest, "} ")
			if kind != "sum" && kind != "count" {
				continue
			}
			series := h.prefix + labelValue(labels, h.label)
			if outcome := labelValue(labels, "outcome"); outcome != "" && outcome != "ok" {
				series += " (" + outcome + ")"
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: %q: %w", line, err)
			}
			if sums[series] == nil {
				sums[series] = &histogramSum{series: series}
				order = append(order, series)
			}
			if kind == "sum" {
				sums[series].seconds = v
			} else {
				sums[series].count = int(v)
			}
		}
	}
	out := make([]histogramSum, len(order))
	for i, series := range order {
		out[i] = *sums[series]
	}
	return out, nil
}

// labelValue is the value of label in a Prometheus text series' labels.
func labelValue(labels, label string) string {
	for pair := range strings.SplitSeq(labels, ",") {
		if v, ok := strings.CutPrefix(pair, label+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// printErase prints what was measured, on what, and what was left behind.
func printErase(w io.Writer, o options, t *s3Target, loadAtStart string, chosen []eraseWay, ceilings, results []eraseResult) {
	fmt.Fprintf(w, "bench -erase: %s %s/%s GOMAXPROCS=%d, load average at start %s, at end %s\n", runtime.Version(), runtime.GOOS,
		runtime.GOARCH, runtime.GOMAXPROCS(0), loadAtStart, loadAverage())
	fmt.Fprintf(w, "S3: %s, a bucket per way\n", t.label)
	width := len(ceilingName) // the way column: as wide as the longest name
	for _, way := range eraseWays {
		width = max(width, len(way.name))
	}
	if len(results) > 0 {
		fmt.Fprintf(w, "SQLite service: %s\n", results[0].sqlite)
	}
	limiter := fmt.Sprintf("RATE_LIMIT=%d", o.rateLimit)
	if o.rateLimit <= 0 {
		limiter = "RATE_LIMIT=0 (no limiter)"
	}
	fmt.Fprintf(w, "service: app.New + httpserver.NewServer, a fresh one per way (own DATA_DIR and bucket); %s; JSON logs at %s to io.Discard; purger running\n",
		limiter, o.logLevel)
	fmt.Fprintf(w, "each way: one user, %d uploads seeded directly (records: one SQLite transaction; objects: 16 concurrent PutObject; then sync(2); not timed);\n", o.uploads)
	fmt.Fprintf(w, "  timed from the first call until ListObjectsV2 (max-keys 1, every %v after the last call) finds the bucket empty\n", emptyPoll)
	fmt.Fprintf(w, "  %-*s DeleteObjects, 1,000 keys a request, one after another from one client; no database, no service;\n", width, ceilingName)
	fmt.Fprintf(w, "  %-*s measured right before each way, on as many objects seeded alongside the way's\n", width, "")
	for _, way := range chosen {
		fmt.Fprintf(w, "  %-*s %s\n", width, way.name, way.title)
	}
	fmt.Fprintf(w, "\n%-*s %7s %6s %8s %10s %9s %7s\n", width, "way", "n", "calls", "seconds", "last call", "uploads/s", "ratio")
	for i, r := range results {
		ceilingRate := float64(ceilings[i].n) / ceilings[i].elapsed.Seconds()
		for _, row := range []eraseResult{ceilings[i], r} {
			rate := float64(row.n) / row.elapsed.Seconds()
			fmt.Fprintf(w, "%-*s %7d %6d %8.2f %9.2fs %9.0f %6.2fx\n", width, row.way, row.n, row.calls, row.elapsed.Seconds(),
				(row.elapsed - row.drain).Seconds(), rate, rate/ceilingRate)
		}
	}
	fmt.Fprintf(w, "(ceiling: objects/s; last call: seconds until the last call returned; ratio: to the ceiling just above)\n")
	fmt.Fprintf(w, "\nthe service's own metrics (requests, seconds in them):\n")
	for _, r := range results {
		var parts []string
		for _, s := range r.served {
			parts = append(parts, fmt.Sprintf("%s %d %.2fs", s.series, s.count, s.seconds))
		}
		fmt.Fprintf(w, "  %-*s %s\n", width, r.way, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	for _, r := range results {
		userLeft := "user kept"
		if r.left.users == 0 {
			userLeft = "user deleted"
		}
		fmt.Fprintf(w, "check %-*s: %d upload records, %d purge notes, %d objects in its bucket, %s",
			width, r.way, r.left.records, r.left.purges, r.left.objects, userLeft)
		if r.notesAfter > emptyPoll {
			fmt.Fprintf(w, " (the last purge notes went %.2fs after the last object)", r.notesAfter.Seconds())
		}
		fmt.Fprintln(w)
	}
}
