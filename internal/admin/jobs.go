package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/jobs"
)

// JobSummary is a deletion job as the jobs commands print it, and one
// JSON line of a job followed to its end.
type JobSummary struct {
	JobID      string     `json:"job_id"`
	Kind       string     `json:"kind"`
	OwnerID    string     `json:"owner_id"`
	Status     string     `json:"status"`
	Matched    int        `json:"matched"`
	Deleted    int        `json:"deleted"`
	Failed     int        `json:"failed"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func summarizeJob(job *ent.DeletionJob) JobSummary {
	return JobSummary{
		JobID: job.ID, Kind: job.Kind.String(), OwnerID: job.OwnerID, Status: job.Status.String(),
		Matched: job.MatchedCount, Deleted: job.DeletedCount, Failed: job.FailedCount, Error: job.Error,
		CreatedAt: job.CreatedAt.UTC(), StartedAt: utc(job.StartedAt), FinishedAt: utc(job.FinishedAt),
	}
}

// The jobs commands: for operators, so every owner's jobs.
var (
	JobsList   = Command{checkJobsList, listJobs}
	JobsShow   = Command{needsJobID("jobs show"), showJob}
	JobsCancel = Command{needsJobID("jobs cancel"), cancelJob}
	JobsWatch  = Command{needsJobID("jobs watch"), watchJob}
)

// needsJobID checks --id: given, and shaped as a job's id (a user's id
// given by mistake is told apart before the database is opened).
func needsJobID(command string) func(Options) error {
	return func(o Options) error {
		if err := needsID(command)(o); err != nil {
			return err
		}
		if !ids.Valid(ids.JobPrefix, o.ID) {
			return fmt.Errorf("%s: --id %q is not a job id (job_ and 32 hex digits)", command, o.ID)
		}
		return nil
	}
}

// readJobs reads, cancels and watches the jobs of client; it never runs
// one (it has no deleter), which is a serving instance's or `users
// delete`'s to do.
func readJobs(client *ent.Client) *jobs.Jobs {
	return jobs.New(client, nil, slog.New(slog.DiscardHandler), jobs.Options{})
}

// jobStatuses parses --status: names of statuses, in any case.
func jobStatuses(names []string) ([]deletionjob.Status, error) {
	statuses := make([]deletionjob.Status, 0, len(names))
	for _, name := range names {
		status := deletionjob.Status(strings.ToUpper(strings.TrimSpace(name)))
		if deletionjob.StatusValidator(status) != nil {
			return nil, fmt.Errorf("jobs list: unknown --status %q; want some of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED", name)
		}
		statuses = append(statuses, status)
	}
	return statuses, nil
}

func checkJobsList(o Options) error {
	if o.Limit <= 0 {
		return fmt.Errorf("jobs list: --limit %d: want a whole number above zero", o.Limit)
	}
	_, err := jobStatuses(o.Statuses)
	return err
}

func listJobs(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	statuses, err := jobStatuses(o.Statuses)
	if err != nil {
		return err
	}
	owner := jobs.AnyOwner
	if o.UserID != "" {
		owner = o.UserID
	}
	found, err := readJobs(client).List(ctx, owner, o.Limit, statuses...)
	if err != nil {
		return err
	}
	summaries := make([]JobSummary, 0, len(found))
	for _, job := range found {
		summaries = append(summaries, summarizeJob(job))
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(summaries)
	}
	if len(summaries) == 0 {
		_, err := fmt.Fprintln(out, "No deletion jobs.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB ID\tKIND\tOWNER\tSTATUS\tMATCHED\tDELETED\tFAILED\tCREATED")
	for _, s := range summaries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
			s.JobID, s.Kind, s.OwnerID, s.Status, s.Matched, s.Deleted, s.Failed, formatTime(s.CreatedAt))
	}
	return tw.Flush()
}

// getJob is Get for operators, with the error an operator reads.
func getJob(ctx context.Context, j *jobs.Jobs, jobID string) (*ent.DeletionJob, error) {
	job, err := j.Get(ctx, jobID, jobs.AnyOwner)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, fmt.Errorf("no deletion job with id %q", jobID)
	}
	return job, err
}

func showJob(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	job, err := getJob(ctx, readJobs(client), o.ID)
	if err != nil {
		return err
	}
	return writeJob(out, o.JSON, job)
}

// writeJob prints a job: one JSON object, or a line a field.
func writeJob(out io.Writer, asJSON bool, job *ent.DeletionJob) error {
	s := summarizeJob(job)
	if asJSON {
		return json.NewEncoder(out).Encode(s)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Job:\t%s\nKind:\t%s\nOwner:\t%s\nStatus:\t%s\n", s.JobID, s.Kind, s.OwnerID, s.Status)
	fmt.Fprintf(tw, "Matched:\t%d\nDeleted:\t%d\nFailed:\t%d\n", s.Matched, s.Deleted, s.Failed)
	if s.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", s.Error)
	}
	fmt.Fprintf(tw, "Created:\t%s\nStarted:\t%s\nFinished:\t%s\n",
		formatTime(s.CreatedAt), formatOptional(s.StartedAt, "not yet"), formatOptional(s.FinishedAt, "not yet"))
	return tw.Flush()
}

func cancelJob(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	j := readJobs(client)
	before, err := getJob(ctx, j, o.ID)
	if err != nil {
		return err
	}
	job, err := j.Cancel(ctx, o.ID, jobs.AnyOwner)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(summarizeJob(job))
	}
	if jobs.Finished(before) || job.Status != deletionjob.StatusCANCELED {
		_, err := fmt.Fprintf(out, "Job %s had already ended (%s); nothing changed.\n", job.ID, job.Status)
		return err
	}
	_, err = fmt.Fprintf(out, "Canceled job %s: %d of %d uploads were deleted, and stay deleted.\n",
		job.ID, job.DeletedCount, job.MatchedCount)
	return err
}

func watchJob(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	j := readJobs(client)
	if _, err := getJob(ctx, j, o.ID); err != nil {
		return err
	}
	p := newProgress(out, o.JSON, "Job "+o.ID)
	final, err := follow(ctx, j, o.ID, nil, p.step)
	if err != nil {
		return p.abandon(err)
	}
	if err := p.finish(final, summarizeJob(final), finalText(final)); err != nil {
		return err
	}
	return jobOutcome(final)
}

// finalText is the line that says how a job ended.
func finalText(job *ent.DeletionJob) string {
	text := fmt.Sprintf("Job %s %s: %d of %d uploads deleted", job.ID, job.Status, job.DeletedCount, job.MatchedCount)
	if job.FailedCount > 0 {
		text += fmt.Sprintf(", %d left", job.FailedCount)
	}
	return text + ".\n"
}

// jobOutcome is the error of a job that ended other than SUCCEEDED: the
// command's exit status says so.
func jobOutcome(job *ent.DeletionJob) error {
	switch job.Status {
	case deletionjob.StatusSUCCEEDED:
		return nil
	case deletionjob.StatusFAILED:
		return fmt.Errorf("deletion job %s FAILED after deleting %d of %d uploads: %s", job.ID, job.DeletedCount, job.MatchedCount, job.Error)
	default:
		return fmt.Errorf("deletion job %s was %s after deleting %d of %d uploads (they stay deleted)", job.ID, job.Status, job.DeletedCount, job.MatchedCount)
	}
}
