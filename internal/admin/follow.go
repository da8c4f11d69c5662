package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/internal/jobs"
)

// follow watches the job jobID until it ends and returns it in its final
// state, calling step with each state before that. runHere, when given,
// runs beside the watch (see takeOver) and is stopped, and waited for,
// before follow returns. A watch that ends before the job does (ctx ended,
// or the job was pruned) is an error.
func follow(ctx context.Context, j *jobs.Jobs, jobID string, runHere func(context.Context), step func(*ent.DeletionJob) error) (*ent.DeletionJob, error) {
	watchCtx, cancel := context.WithCancel(ctx)
	var running sync.WaitGroup
	stop := func() {
		cancel()
		running.Wait()
	}
	defer stop()
	updates, err := j.Watch(watchCtx, jobID, jobs.AnyOwner)
	if err != nil {
		return nil, err
	}
	if runHere != nil {
		running.Go(func() { runHere(watchCtx) })
	}
	for job := range updates {
		if jobs.Finished(job) {
			return job, nil
		}
		if err := step(job); err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("stopped watching deletion job %s before it ended: %w", jobID, ctx.Err())
	}
	return nil, fmt.Errorf("deletion job %s could no longer be read before it ended", jobID)
}

// takeOverAfter is how long `users delete` leaves a new job to a serving
// instance before it runs it itself. A server's runner polls every
// jobs.DefaultPollInterval (and on PostgreSQL is woken at once), so twice
// that is enough for an idle server to claim it first: killing the
// command then leaves the job running in the server, not held by a dead
// process until its lease ends.
const takeOverAfter = 2 * jobs.DefaultPollInterval

// takeOver returns what runs beside the watch of `users delete`: after
// takeOverAfter, and then every jobs.DefaultPollInterval, it runs the job
// here if nobody holds it (no server runs, or the holder died and its
// lease ended, or a server stopping handed it back). So the command sees
// its job through with or without a server; a claim it loses to another
// holder simply ends its run.
func takeOver(j *jobs.Jobs, jobID string, logger *slog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		wait := time.NewTimer(takeOverAfter)
		defer wait.Stop()
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		ticker := time.NewTicker(jobs.DefaultPollInterval)
		defer ticker.Stop()
		for {
			if _, err := j.RunJob(ctx, jobID); err != nil && ctx.Err() == nil {
				logger.WarnContext(ctx, "run deletion job here; trying again", "job_id", jobID, "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}
}

// progress shows a job's progress on out: a progress bar (count, rate,
// time left) when out is a terminal, a JSON line a state with --json, and
// otherwise a plain line a state, which a log or a pipe keeps readably.
type progress struct {
	out   io.Writer
	json  bool
	label string
	bar   *progressbar.ProgressBar // on a terminal, once there is a count to show
	// terminal: out is one; the bar is drawn rather than lines printed.
	terminal bool
}

func newProgress(out io.Writer, asJSON bool, label string) *progress {
	return &progress{out: out, json: asJSON, label: label, terminal: !asJSON && isTerminal(out)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// step shows a state of the job before its last.
func (p *progress) step(job *ent.DeletionJob) error {
	switch {
	case p.json:
		return json.NewEncoder(p.out).Encode(summarizeJob(job))
	case p.terminal && (p.bar != nil || job.Status != deletionjob.StatusQUEUED):
		// The bar starts with the run: its rate and time left are the
		// deletes', not the wait for a runner.
		p.draw(job)
		return nil
	default:
		_, err := fmt.Fprintf(p.out, "%s %s: %d of %d uploads deleted\n", job.ID, job.Status, job.DeletedCount, job.MatchedCount)
		return err
	}
}

// draw moves the bar to the job's count. DeletedCount may pass
// MatchedCount (an erase deletes uploads that arrived meanwhile): the bar
// grows.
func (p *progress) draw(job *ent.DeletionJob) {
	total := int64(max(job.MatchedCount, job.DeletedCount))
	if total == 0 {
		return // nothing to count: no bar
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription(p.label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("uploads"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if total > p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(int64(job.DeletedCount)) // a bar that cannot draw is no reason to stop
}

// finish shows the final state: asJSON as the last JSON line, or the bar
// at its end followed by text.
func (p *progress) finish(job *ent.DeletionJob, asJSON any, text string) error {
	if p.json {
		return json.NewEncoder(p.out).Encode(asJSON)
	}
	if p.terminal {
		p.draw(job)
		if p.bar != nil && succeeded(job) && int64(job.DeletedCount) < p.bar.GetMax64() {
			// Others deleted some meanwhile: all there was is done.
			p.bar.ChangeMax64(int64(job.DeletedCount))
			_ = p.bar.Set64(int64(job.DeletedCount))
		}
		if p.bar != nil {
			_ = p.bar.Exit()
			fmt.Fprintln(p.out)
		}
	}
	_, err := io.WriteString(p.out, text)
	return err
}

// abandon ends the bar, if any, where it stands, and returns err.
func (p *progress) abandon(err error) error {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.out)
	}
	return err
}

// succeeded reports whether job ended well.
func succeeded(job *ent.DeletionJob) bool { return job.Status == deletionjob.StatusSUCCEEDED }
