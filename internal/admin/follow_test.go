package admin

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
)

// TestProgressBar: on a terminal, a job's progress is a bar with the count,
// the rate and the time left, redrawn in place; it starts once the job
// runs (the wait for a runner is a line), and ends full, followed by the
// final text on a line of its own.
func TestProgressBar(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := &progress{out: &out, label: "Erasing usr_1", terminal: true}
	job := &ent.DeletionJob{ID: "job_1", Status: deletionjob.StatusQUEUED, MatchedCount: 3000}
	for _, deleted := range []int{0, 0, 1000, 2000} {
		if deleted > 0 || out.Len() > 0 {
			job.Status = deletionjob.StatusRUNNING
		}
		job.DeletedCount = deleted
		if err := p.step(job); err != nil {
			t.Fatal(err)
		}
	}
	job.Status, job.DeletedCount = deletionjob.StatusSUCCEEDED, 3000
	if err := p.finish(job, nil, "Done.\n"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	queued, bar, _ := strings.Cut(got, "\r")
	if queued != "job_1 QUEUED: 0 of 3000 uploads deleted\n" {
		t.Errorf("before the job runs: %q, want a plain line", queued)
	}
	if !regexp.MustCompile(`Erasing usr_1 +66% .*\(2000/3000, \d+ uploads/(s|min|hr)\) \[\d+s:\d+s\]`).MatchString(bar) {
		t.Errorf("no bar with count, rate and time left at 2000 of 3000 in %q", bar)
	}
	if !regexp.MustCompile(`100% .*\(3000/3000, [^)]*\)\nDone\.\n$`).MatchString(got) {
		t.Errorf("the bar does not end full, then the text: %q", got)
	}
}
