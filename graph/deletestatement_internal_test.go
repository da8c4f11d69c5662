package graph

import (
	"slices"
	"testing"
	"time"
)

// TestOneDeleteStatement: a single delete's statement, built once, is the
// very statement the builder makes for that upload, arguments in place:
// the owner's, the upload's and the time that holds are compared with.
func TestOneDeleteStatement(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 21, 30, 0, 123456789, time.FixedZone("x", 3600))
	query, args := deleteStatement("usr_owner", []string{"upl_one"}, now)
	wantQuery, wantArgs := buildDelete("usr_owner", []string{"upl_one"}, now.UTC())
	if query != wantQuery {
		t.Errorf("statement:\n  %s\nwant\n  %s", query, wantQuery)
	}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("arguments %v, want %v", args, wantArgs)
	}
}
