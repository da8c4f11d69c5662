package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// printSetup says what is being compared, on what.
func printSetup(ctx context.Context, w io.Writer, o options, t *s3Target, tokens *issuer, svcDB, hwDB *sql.DB) error {
	svcSQL, err := sqliteSettings(ctx, svcDB)
	if err != nil {
		return err
	}
	hwSQL, err := sqliteSettings(ctx, hwDB)
	if err != nil {
		return err
	}
	limiter := fmt.Sprintf("rate limiter (httprate, %d/min per key)", o.rateLimit)
	if o.rateLimit <= 0 {
		limiter = "no rate limiter (RATE_LIMIT=0)"
	}
	fmt.Fprintf(w, "bench: %s %s/%s GOMAXPROCS=%d, load average at start %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), loadAverage())
	fmt.Fprintf(w, "S3: %s, one bucket per side\n", t.label)
	fmt.Fprintf(w, "SQLite service:      %s\n", svcSQL)
	fmt.Fprintf(w, "SQLite hand-written: %s\n", hwSQL)
	if o.prepared {
		fmt.Fprintln(w, "hand-written: runs its two reads as prepared statements (-handwritten-prepared)")
	}
	if o.lockFirst {
		fmt.Fprintln(w, "hand-written: looks the upload up inside its write transaction (-handwritten-lock-first)")
	}
	fmt.Fprintf(w, "service: app.New + httpserver.NewServer + Listener; JSON logs at %s to io.Discard; request id + log, metrics, CORS, auth, %s; purger polling\n",
		o.logLevel, limiter)
	if tokens != nil {
		fmt.Fprintf(w, "service: AUTH_ISSUER=%s (in-process, internal/oidc/oidctest; %s keys) AUTH_AUDIENCE=%s; each caller's user has an identity there (signin.Link) and a token of it per key\n",
			tokens.iss.URL, strings.Join(tokenAlgorithms, " and "), benchAudience)
		if o.tokenPerRequest {
			fmt.Fprintln(w, "bearer scenarios: every request carries a token of its own, never sent before (-token-per-request)")
		}
	}
	fmt.Fprintf(w, "load: %d callers (a user and key each), %d requests per side per delete scenario (rest-404: %d) in %d rounds (first side alternates), after %d warm-up each\n\n",
		o.callers, o.requests, o.measured(rest404), o.rounds, o.warmups())
	return nil
}

// loadAverage is the machine's 1, 5 and 15 minute load average: others may
// be using it.
func loadAverage() string {
	loadavg, _ := os.ReadFile("/proc/loadavg")
	load := strings.Fields(string(loadavg))
	return strings.Join(load[:min(3, len(load))], " ")
}

// printResults prints each scenario's figures and the service's ratios.
func printResults(w io.Writer, chosen []scenario, results map[string][2]result) {
	fmt.Fprintf(w, "%-30s %-26s %6s %8s %9s %9s %6s\n", "scenario", "side", "n", "req/s", "p50", "p99", "errors")
	for _, sc := range chosen {
		r := results[sc.name]
		svc, hw := r[0].stats(), r[1].stats()
		names := [3]string{"service", "hand-written", "service/hand-written"}
		switch {
		case sc.self: // a token against a key, both on the service
			alg := sc.service.tokenAlg()
			names = [3]string{"service, " + alg + " token", "service, API key", "token/key"}
		case sc.service != sc.baseline:
			names = [3]string{"service", "hand-written REST", "service/hand-written REST"}
		}
		fmt.Fprintf(w, "%-30s %-26s %6d %8.0f %9s %9s %6d\n", sc.title, names[0], r[0].requests, svc.rps, ms(svc.p50), ms(svc.p99), r[0].errors)
		fmt.Fprintf(w, "%-30s %-26s %6d %8.0f %9s %9s %6d\n", "", names[1], r[1].requests, hw.rps, ms(hw.p50), ms(hw.p99), r[1].errors)
		fmt.Fprintf(w, "%-30s %-26s %6s %7.2fx %8.2fx %8.2fx\n", "", names[2], "", svc.rps/hw.rps,
			float64(svc.p50)/float64(hw.p50), float64(svc.p99)/float64(hw.p99))
		errorSides := []string{"service", "hand-written"}
		if sc.self {
			errorSides = names[:2]
		}
		for i, side := range errorSides {
			if r[i].firstErr != nil {
				fmt.Fprintf(w, "  first %s error: %v\n", side, r[i].firstErr)
			}
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// printChecks reports what each side left behind: no purge notes and no
// trash entries, a "purged" event for each "deleted" one, and in the bucket
// only the objects of uploads that were not deleted.
func printChecks(ctx context.Context, w io.Writer, t *s3Target, dbs map[*side]*sql.DB, sides ...*side) error {
	for _, s := range sides {
		if s.settle != nil {
			s.settle()
		}
	}
	fmt.Fprintln(w)
	var failed []string
	for _, s := range sides {
		var purges, uploads int
		if err := dbs[s].QueryRowContext(ctx, "SELECT count(*) FROM object_purges").Scan(&purges); err != nil {
			return err
		}
		if err := dbs[s].QueryRowContext(ctx, "SELECT count(*) FROM uploads").Scan(&uploads); err != nil {
			return err
		}
		var trash, deletedEvents, purgedEvents int
		if err := dbs[s].QueryRowContext(ctx, "SELECT count(*) FROM deleted_uploads").Scan(&trash); err != nil {
			return err
		}
		if err := dbs[s].QueryRowContext(ctx, `SELECT coalesce(sum(kind = 'DELETED'), 0), coalesce(sum(kind = 'PURGED'), 0)
			FROM audit_events`).Scan(&deletedEvents, &purgedEvents); err != nil {
			return err
		}
		objects, err := countObjects(ctx, t.client, t.buckets[s.name])
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "check %-12s: %d purge notes left, %d trash entries, %d upload records, %d objects in its bucket; %d deleted and %d purged events\n",
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
