package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// printSetup says what is being compared, on what.
func printSetup(ctx context.Context, w io.Writer, o options, t *s3Target, tokens *issuer, sides []*side) error {
	limiter := fmt.Sprintf("rate limiter (httprate, %d/min per key)", o.rateLimit)
	if o.rateLimit <= 0 {
		limiter = "no rate limiter (RATE_LIMIT=0)"
	}
	fmt.Fprintf(w, "bench: %s %s/%s GOMAXPROCS=%d, load average at start %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), loadAverage())
	fmt.Fprintf(w, "S3: %s, one bucket per side\n", t.label)
	for _, s := range sides {
		settings, err := sqliteSettings(ctx, s.db)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "SQLite %-10s %s\n", s.name+":", settings)
	}
	if o.prepared {
		fmt.Fprintln(w, "hand-written: run their two reads as prepared statements (-handwritten-prepared)")
	}
	if o.busyWait {
		fmt.Fprintln(w, "hand-written: write on their pool of connections, waiting for SQLite's lock in its busy handler (-handwritten-busy-wait)")
	} else {
		fmt.Fprintln(w, "hand-written: write transactions take turns on one connection (database/sql pool of 1), as the service's take turns")
	}
	if o.lockFirst {
		fmt.Fprintln(w, "hand-written: look the upload up only inside their write transaction (-handwritten-lock-first)")
	}
	fmt.Fprintf(w, "service: app.New + httpserver.NewServer + Listener; JSON logs at %s to io.Discard; request id + log, metrics, CORS, auth, %s; purger polling\n",
		o.logLevel, limiter)
	fmt.Fprintln(w, "minimal: net/http + database/sql + S3 SDK; read, then one transaction {DELETE … RETURNING, INSERT purge note}, DeleteObject inline; notes swept in batches off the request path")
	fmt.Fprintln(w, "same-work: the same, plus what the service's delete writes: trash entry, deleted/purged audit events, webhook endpoint reads, a second transaction after DeleteObject")
	if tokens != nil {
		fmt.Fprintf(w, "service: AUTH_ISSUER=%s (in-process, internal/oidc/oidctest; %s keys) AUTH_AUDIENCE=%s; each caller's user has an identity there (signin.Link) and a token of it per key\n",
			tokens.iss.URL, strings.Join(tokenAlgorithms, " and "), benchAudience)
		if o.tokenPerRequest {
			fmt.Fprintln(w, "bearer scenarios: every request carries a token of its own, never sent before (-token-per-request)")
		}
	}
	fmt.Fprintf(w, "load: %s callers (as many users as the most, an API key each), %d requests per side per delete scenario (rest-404: %d) in %d rounds (the order of the sides changes each round), after %d warm-up each\n",
		joinInts(o.callers), o.requests, o.measured(rest404), o.rounds, o.warmups())
	return nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// loadAverage is the machine's 1, 5 and 15 minute load average: others may
// be using it.
func loadAverage() string {
	loadavg, _ := os.ReadFile("/proc/loadavg")
	load := strings.Fields(string(loadavg))
	return strings.Join(load[:min(3, len(load))], " ")
}

// labels name m's sides and the service's ratio to each other side.
func (m measurement) labels() (sides, ratios []string) {
	if m.sc.service == restDeleteKeyed { // an Idempotency-Key against none, both on the service
		return []string{"service, Idempotency-Key", "service, no key"}, []string{"", "key/no-key"}
	}
	if m.sc.self { // a token against a key, both on the service
		alg := m.sc.service.tokenAlg()
		return []string{"service, " + alg + " token", "service, API key"}, []string{"", "token/key"}
	}
	sides, ratios = []string{serviceSide}, []string{""}
	for _, name := range m.sides[1:] {
		if name == serviceTracedSide { // the other way round: what tracing costs
			sides, ratios = append(sides, name), append(ratios, "traced/untraced")
			continue
		}
		if m.sc.service != m.sc.baseline {
			name += " REST"
		}
		sides, ratios = append(sides, name), append(ratios, "service/"+name)
	}
	return sides, ratios
}

// printResults prints, per count of callers, each scenario's figures and
// the service's ratios, then the ratios that sum the cost up.
func printResults(w io.Writer, o options, measured []measurement) {
	for _, c := range o.callers {
		fmt.Fprintf(w, "\n%d callers\n", c)
		fmt.Fprintf(w, "%-30s %-26s %6s %8s %9s %9s %6s\n", "scenario", "side", "n", "req/s", "p50", "p99", "errors")
		for _, m := range measured {
			if m.callers != c {
				continue
			}
			names, ratios := m.labels()
			title := m.sc.title
			for i, r := range m.results {
				st := r.stats()
				fmt.Fprintf(w, "%-30s %-26s %6d %8.0f %9s %9s %6d\n", title, names[i], r.requests, st.rps, ms(st.p50), ms(st.p99), r.errors)
				title = ""
			}
			svc := m.results[0].stats()
			for i, r := range m.results[1:] {
				num, den := svc, r.stats()
				if m.sides[i+1] == serviceTracedSide {
					num, den = den, num
				}
				fmt.Fprintf(w, "%-30s %-26s %6s %7.2fx %8.2fx %8.2fx\n", "", ratios[i+1], "", num.rps/den.rps,
					float64(num.p50)/float64(den.p50), float64(num.p99)/float64(den.p99))
			}
			for i, r := range m.results {
				if r.firstErr != nil {
					fmt.Fprintf(w, "  first %s error: %v\n", names[i], r.firstErr)
				}
			}
		}
	}
	printSummary(w, o, measured)
}

// printSummary prints, per count of callers, the service's req/s over each
// baseline's in the REST and GraphQL deletes: what the features cost.
func printSummary(w io.Writer, o options, measured []measurement) {
	columns := []struct{ title, scenario, baseline string }{
		{"REST/minimal", "rest-delete", minimalSide},
		{"REST/same-work", "rest-delete", sameWorkSide},
		{"GraphQL/minimal", "graphql", minimalSide},
		{"GraphQL/same-work", "graphql", sameWorkSide},
	}
	ratio := func(c int, scenario, baseline string) (float64, bool) {
		for _, m := range measured {
			if m.callers != c || m.sc.name != scenario {
				continue
			}
			for i, name := range m.sides {
				if name == baseline && i > 0 {
					return m.results[0].stats().rps / m.results[i].stats().rps, true
				}
			}
		}
		return 0, false
	}
	var header strings.Builder
	fmt.Fprintf(&header, "\n%-12s", "req/s ratio")
	for _, col := range columns {
		fmt.Fprintf(&header, " %18s", col.title)
	}
	printed := false
	for _, c := range o.callers {
		var line strings.Builder
		fmt.Fprintf(&line, "%-12s", fmt.Sprintf("%d callers", c))
		found := false
		for _, col := range columns {
			if r, ok := ratio(c, col.scenario, col.baseline); ok {
				fmt.Fprintf(&line, " %17.2fx", r)
				found = true
			} else {
				fmt.Fprintf(&line, " %18s", "-")
			}
		}
		if !found {
			continue
		}
		if !printed {
			fmt.Fprintln(w, header.String()+"   (service req/s over baseline req/s)")
			printed = true
		}
		fmt.Fprintln(w, line.String())
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// printChecks reports what each side left behind: no purge notes and no
// trash entries, a "purged" event for each "deleted" one, and in the bucket
// only the objects of uploads that were not deleted.
func printChecks(ctx context.Context, w io.Writer, t *s3Target, sides []*side) error {
	for _, s := range sides {
		if s.settle != nil {
			s.settle()
		}
	}
	fmt.Fprintln(w)
	var failed []string
	for _, s := range sides {
		var purges, uploads int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM object_purges").Scan(&purges); err != nil {
			return err
		}
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM uploads").Scan(&uploads); err != nil {
			return err
		}
		var trash, deletedEvents, purgedEvents int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM deleted_uploads").Scan(&trash); err != nil {
			return err
		}
		if err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(kind = 'DELETED'), 0), coalesce(sum(kind = 'PURGED'), 0)
			FROM audit_events`).Scan(&deletedEvents, &purgedEvents); err != nil {
			return err
		}
		objects, err := countObjects(ctx, t.client, t.buckets[s.name])
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "check %-10s: %d purge notes left, %d trash entries, %d upload records, %d objects in its bucket; %d deleted and %d purged events\n",
			s.name, purges, trash, uploads, objects, deletedEvents, purgedEvents)
		if purges != 0 || trash != 0 || objects != uploads || deletedEvents != purgedEvents {
			failed = append(failed, s.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s left purge notes, trash entries, objects without records or deletes without a purged event", strings.Join(failed, ", "))
	}
	return nil
}
