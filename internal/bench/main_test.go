package main

import (
	"context"
	"strings"
	"testing"
)

// TestRun runs every scenario briefly on the embedded S3 server, so that the
// command keeps working as the service changes. It checks that both sides
// answered every request as the contract says and left nothing behind; it
// asserts nothing about timing.
func TestRun(t *testing.T) {
	var out strings.Builder
	args := []string{"-n", "40", "-c", "4", "-rounds", "2", "-scenarios", "rest-delete,rest-404,graphql,graphql-vars,rest-delete-bearer,rest-delete-bearer-es256"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, sc := range scenarios {
		if !strings.Contains(out.String(), sc.title) {
			t.Errorf("no %q row in:\n%s", sc.title, out.String())
		}
	}
	if strings.Contains(out.String(), "error:") {
		t.Errorf("requests failed:\n%s", out.String())
	}
}

// TestRunTokenPerRequest runs the bearer scenarios with a token of its own
// on every request: each must be accepted (the full check each time).
func TestRunTokenPerRequest(t *testing.T) {
	var out strings.Builder
	args := []string{"-n", "20", "-c", "2", "-rounds", "2", "-token-per-request", "-scenarios", "rest-delete-bearer,rest-delete-bearer-es256"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "(-token-per-request)") || strings.Contains(out.String(), "error:") {
		t.Errorf("unexpected output:\n%s", out.String())
	}
}

// TestRunErase runs the erase benchmark on a few uploads (two pages) on the
// embedded S3 server: every way must erase them all and leave nothing
// behind. It asserts nothing about timing.
func TestRunErase(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-erase", "-uploads", "1001"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, way := range append([]string{ceilingName}, strings.Split(eraseWayNames(), ",")...) {
		if !strings.Contains(out.String(), "\n"+way+" ") {
			t.Errorf("no %q row in:\n%s", way, out.String())
		}
	}
}
