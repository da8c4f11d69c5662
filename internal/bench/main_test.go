package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRun runs every scenario briefly on the embedded S3 server, at two
// counts of callers, so that the command keeps working as the service
// changes. It checks that every side answered every request as the contract
// says and left nothing behind, and that the summary has its four ratios at
// each count; it asserts nothing about timing.
func TestRun(t *testing.T) {
	var out strings.Builder
	args := []string{"-n", "40", "-c", "2,4", "-rounds", "6", "-scenarios", "rest-delete,rest-404,graphql,graphql-vars,rest-delete-bearer,rest-delete-bearer-es256,rest-delete-key"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"\n2 callers\n", "\n4 callers\n", "service/minimal", "service/same-work REST", "token/key", "key/no-key"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	for _, sc := range scenarios {
		if strings.Count(out.String(), sc.title) != 2 {
			t.Errorf("not two %q rows (one per count of callers) in:\n%s", sc.title, out.String())
		}
	}
	for _, c := range []string{"2", "4"} {
		// Four ratios, none missing.
		if !strings.Contains(out.String(), "\n"+c+" callers ") || strings.Count(lineOf(out.String(), c+" callers "), "x") != 4 {
			t.Errorf("no four ratios at %s callers in:\n%s", c, out.String())
		}
	}
	if strings.Contains(out.String(), "error:") {
		t.Errorf("requests failed:\n%s", out.String())
	}
}

// lineOf is the line of s that begins with prefix.
func lineOf(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// TestRunHandwrittenFlags runs the baselines with their reads prepared and
// the lookup inside the write transaction, and again waiting in SQLite's
// busy handler: every answer must keep to the contract, and nothing be left.
func TestRunHandwrittenFlags(t *testing.T) {
	for _, flags := range [][]string{{"-handwritten-prepared", "-handwritten-lock-first"}, {"-handwritten-busy-wait"}} {
		var out strings.Builder
		args := append([]string{"-n", "20", "-c", "4", "-rounds", "2", "-scenarios", "rest-delete,rest-404"}, flags...)
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatalf("%v: run: %v\n%s", flags, err, out.String())
		}
		if strings.Contains(out.String(), "error:") {
			t.Errorf("%v: requests failed:\n%s", flags, out.String())
		}
	}
}

// TestOrder checks that over n! rounds the sides are driven in each of
// their orders once, so that each side goes first, and before each other,
// as often as any other; and that every n rounds each side has been in
// each place once, so that a run of a few rounds (-rounds 8 with the traced
// side's four) is balanced too.
func TestOrder(t *testing.T) {
	for n, rounds := range map[int]int{2: 2, 3: 6, 4: 24} {
		seen := map[string]bool{}
		places := make([]map[int]bool, n) // place -> sides in it in this block of n rounds
		for round := range rounds {
			o := order(round, n)
			if len(o) != n || !slices.Equal(slices.Sorted(slices.Values(o)), order(0, n)) {
				t.Fatalf("order(%d, %d) = %v: not each side once", round, n, o)
			}
			seen[fmt.Sprint(o)] = true
			if round%n == 0 {
				for p := range places {
					places[p] = map[int]bool{}
				}
			}
			for p, side := range o {
				places[p][side] = true
			}
			if round%n == n-1 {
				for p := range places {
					if len(places[p]) != n {
						t.Errorf("%d sides, rounds %d to %d: place %d held only sides %v", n, round-n+1, round, p, places[p])
					}
				}
			}
		}
		if len(seen) != rounds {
			t.Errorf("%d sides: %d orders over %d rounds, want every one: %v", n, len(seen), rounds, seen)
		}
	}
}

// TestRunInstances runs the multi-instance mode tiny (1 and 2 service
// processes, 50 deletes each) on a throwaway schema of TEST_DATABASE_URL and
// the embedded S3, or without it one process on its SQLite file: every
// delete answered as the contract says, and the run's checks hold (no
// upload purged twice, no event delivered twice or never, nothing left:
// records, objects, purges, deliveries), or run fails. It asserts nothing
// about timing.
func TestRunInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the service and starts its processes")
	}
	args, counts := []string{"-instances", "1", "-database", "sqlite"}, []string{"1"}
	if os.Getenv("TEST_DATABASE_URL") != "" {
		args, counts = []string{"-instances", "1,2"}, []string{"1", "2"}
	}
	var out strings.Builder
	if err := run(context.Background(), append(args, "-n", "50", "-c", "8", "-drain", "20s"), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, n := range counts {
		if lineOf(out.String(), n+" ") == "" {
			t.Errorf("no row for %s instances in:\n%s", n, out.String())
		}
	}
	if want := "duplicate purges 0, duplicate deliveries 0, missing deliveries 0, left: uploads 0, objects 0, purges 0, deliveries 0"; strings.Count(out.String(), want) != len(counts) {
		t.Errorf("want %q %d times in:\n%s", want, len(counts), out.String())
	}
}

// TestLagTrend: the webhook lag of the first and last tenth of the deletes
// tells a backlog that grew from deliveries that kept pace.
func TestLagTrend(t *testing.T) {
	t.Parallel()
	growing := make([]time.Duration, 100)
	steady := make([]time.Duration, 100)
	for i := range growing {
		growing[i] = time.Duration(i) * 100 * time.Millisecond
		steady[i] = 300*time.Millisecond + time.Duration(i%3)*time.Millisecond
	}
	if first, last := lagTrend(growing); first > 500*time.Millisecond || last < 9*time.Second {
		t.Errorf("a lag growing with each delete: first tenth %s, last %s; want under 0.5 s and over 9 s", first, last)
	}
	if first, last := lagTrend(steady); first != last {
		t.Errorf("a steady lag: first tenth %s, last %s; want alike", first, last)
	}
	if first, last := lagTrend(nil); first != 0 || last != 0 {
		t.Errorf("no lags: %s, %s", first, last)
	}
}
