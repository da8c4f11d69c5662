package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/testenv"
)

// jobLine is a JSON line of users delete or jobs watch.
type jobLine struct {
	JobID          string `json:"job_id"`
	Status         string `json:"status"`
	Matched        int    `json:"matched"`
	Deleted        int    `json:"deleted"`
	Failed         int    `json:"failed"`
	UserID         string `json:"user_id"`
	UploadsDeleted int    `json:"uploads_deleted"`
	KeysRevoked    int    `json:"keys_revoked"`
}

// jobLines parses out as JSON lines, failing the test on any that is not
// one, or whose deleted count goes back.
func jobLines(t *testing.T, out string) []jobLine {
	t.Helper()
	var lines []jobLine
	for text := range strings.Lines(out) {
		var line jobLine
		if err := json.Unmarshal([]byte(text), &line); err != nil {
			t.Fatalf("not a JSON line: %q (%v)\nall:\n%s", text, err, out)
		}
		if n := len(lines); n > 0 && (line.Deleted < lines[n-1].Deleted || line.JobID != lines[n-1].JobID) {
			t.Errorf("line %d went back or changed job: %+v after %+v", n+1, line, lines[n-1])
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		t.Fatal("no JSON lines")
	}
	return lines
}

// seedRecords makes n uploads of userID directly in the database (FAILED,
// with no object), enough for several batches without n requests.
func seedRecords(t *testing.T, env *testenv.Env, userID string, n int) {
	t.Helper()
	for done := 0; done < n; done += 1000 {
		creates := make([]*ent.UploadCreate, 0, 1000)
		for i := done; i < min(n, done+1000); i++ {
			creates = append(creates, env.Client().Upload.Create().SetOwnerID(userID).SetFilename(fmt.Sprintf("f%05d", i)).
				SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED))
		}
		env.Client().Upload.CreateBulk(creates...).SaveX(context.Background())
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestUsersDeleteRunsAJob: with no server to run it, users delete runs
// the user's erase job itself and follows it: every upload (records and
// objects), the keys and the user go, and nobody else's; --json prints a
// JSON line a step, counts never going back, the last one SUCCEEDED with
// what the command printed before it erased through a job. Bad flags and
// an unknown user change nothing; a second run says which job erased them.
func TestUsersDeleteRunsAJob(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true}) // no server runs jobs
	ctx := context.Background()
	userID, key := env.NewUser()
	otherID, otherKey := env.NewUser()
	var objects []string
	for i := range 3 {
		objects = append(objects, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("secret")).ObjectKey)
	}
	seedRecords(t, env, userID, 2500)
	kept := env.MustUpload(otherKey, "kept.txt", []byte("mine"))

	var out bytes.Buffer
	for _, bad := range []admin.Options{{}, {ID: "usr_00000000000000000000000000000000", JSON: true}} {
		if err := admin.RunErase(ctx, env.Client(), env.App.Jobs, quietLogger(), bad, &out); err == nil ||
			!strings.Contains(err.Error(), "needs --id") && !strings.Contains(err.Error(), "no such user") {
			t.Errorf("users delete %+v: %v, want a clear error", bad, err)
		}
	}
	if n := env.Client().DeletionJob.Query().CountX(ctx); n != 0 || out.Len() != 0 {
		t.Fatalf("bad flags started %d jobs, printed %q", n, out.String())
	}

	// Bounded: a command that does not run the job itself would wait for
	// a server for ever.
	eraseCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := admin.RunErase(eraseCtx, env.Client(), env.App.Jobs, quietLogger(), admin.Options{ID: userID, JSON: true}, &out); err != nil {
		t.Fatalf("users delete: %v\n%s", err, out.String())
	}
	lines := jobLines(t, out.String())
	last := lines[len(lines)-1]
	if len(lines) < 2 || lines[0].Status != "QUEUED" {
		t.Errorf("users delete --json printed %+v, want a line a step from QUEUED on", lines)
	}
	if last.Status != "SUCCEEDED" || last.UserID != userID || last.UploadsDeleted != 2503 || last.Deleted != 2503 ||
		last.KeysRevoked != 1 || last.Matched != 2503 {
		t.Errorf("last line %+v, want SUCCEEDED with 2503 uploads deleted, 1 key revoked", last)
	}
	for _, line := range lines[:len(lines)-1] {
		if line.Status == "SUCCEEDED" {
			t.Errorf("a SUCCEEDED line before the last: %+v", line)
		}
	}
	if n := env.Client().Upload.Query().Where(upload.OwnerID(userID)).CountX(ctx); n != 0 {
		t.Errorf("%d of the user's uploads left", n)
	}
	if env.Client().User.Query().Where(user.ID(userID)).ExistX(ctx) ||
		env.Client().APIKey.Query().Where(apikey.OwnerID(userID)).ExistX(ctx) {
		t.Error("the user or their keys are left")
	}
	env.Eventually(10*time.Second, "the user's objects purged", func() bool {
		for _, key := range objects {
			if env.ObjectExists(key) {
				return false
			}
		}
		return true
	})
	env.AssertIntact(kept)
	if !env.Client().User.Query().Where(user.ID(otherID)).ExistX(ctx) {
		t.Error("the other user is gone")
	}

	out.Reset()
	if err := admin.RunErase(ctx, env.Client(), env.App.Jobs, quietLogger(), admin.Options{ID: userID}, &out); err != nil ||
		!strings.Contains(out.String(), "erased already, by job "+last.JobID) {
		t.Errorf("erasing again: %v %q, want it to name job %s", err, out.String(), last.JobID)
	}
}

// TestUsersDeleteDetach: --detach prints the job's id and returns at
// once; a serving instance's runner erases the user, and jobs watch
// follows the job to SUCCEEDED.
func TestUsersDeleteDetach(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{}) // its runner runs jobs
	ctx := context.Background()
	userID, key := env.NewUser()
	env.MustUpload(key, "a.txt", []byte("a"))
	seedRecords(t, env, userID, 1500)

	var out bytes.Buffer
	if err := admin.RunErase(ctx, env.Client(), env.App.Jobs, quietLogger(), admin.Options{ID: userID, Detach: true}, &out); err != nil {
		t.Fatalf("users delete --detach: %v", err)
	}
	jobID := strings.TrimSpace(out.String())
	if _, err := env.App.Jobs.Get(ctx, jobID, jobs.AnyOwner); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("users delete --detach printed %q, want the job's id alone (%v)", out.String(), err)
	}
	out.Reset()
	watchCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := admin.JobsWatch.Run(watchCtx, env.Client(), admin.Options{ID: jobID, JSON: true}, &out); err != nil {
		t.Fatalf("jobs watch: %v\n%s", err, out.String())
	}
	lines := jobLines(t, out.String())
	if last := lines[len(lines)-1]; last.Status != "SUCCEEDED" || last.Deleted != 1501 {
		t.Errorf("jobs watch ended with %+v, want SUCCEEDED with 1501 deleted", last)
	}
	if env.Client().User.Query().Where(user.ID(userID)).ExistX(ctx) {
		t.Error("the user is left")
	}
}

// lineSignal is a writer that says when its first line is written.
type lineSignal struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func (w *lineSignal) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 {
		defer close(w.written)
	}
	return w.buf.Write(p)
}

func (w *lineSignal) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestJobsCommands: an operator lists (filtered by user and status),
// shows, watches and cancels anyone's jobs; cancel ends the watch with
// CANCELED, and an error (a non-zero exit). Unknown ids are clear errors.
func TestJobsCommands(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true}) // jobs stay QUEUED
	ctx := context.Background()
	userID, key := env.NewUser()
	otherID, _ := env.NewUser()
	kept := env.MustUpload(key, "a.txt", []byte("a"))
	job, err := env.App.Jobs.Start(ctx, jobs.Filter{OwnerID: userID, Actor: audit.CLI})
	if err != nil {
		t.Fatal(err)
	}
	client := env.Client()

	run := func(c admin.Command, o admin.Options) (string, error) {
		var out bytes.Buffer
		err := c.Run(ctx, client, o, &out)
		return out.String(), err
	}
	listed := func(o admin.Options) []string {
		t.Helper()
		o.JSON, o.Limit = true, 100
		out, err := run(admin.JobsList, o)
		var found []admin.JobSummary
		if err != nil || json.Unmarshal([]byte(out), &found) != nil {
			t.Fatalf("jobs list %+v: %v %s", o, err, out)
		}
		var ids []string
		for _, s := range found {
			ids = append(ids, s.JobID)
		}
		return ids
	}
	for _, c := range []struct {
		o    admin.Options
		want int
	}{
		{admin.Options{}, 1},
		{admin.Options{UserID: userID}, 1},
		{admin.Options{UserID: otherID}, 0},
		{admin.Options{Statuses: []string{"queued", "RUNNING"}}, 1},
		{admin.Options{Statuses: []string{"SUCCEEDED"}}, 0},
	} {
		if got := listed(c.o); len(got) != c.want || c.want == 1 && got[0] != job.ID {
			t.Errorf("jobs list %+v = %v, want %d job(s)", c.o, got, c.want)
		}
	}
	if out, err := run(admin.JobsShow, admin.Options{ID: job.ID}); err != nil ||
		!strings.Contains(out, "Status:   QUEUED") || !strings.Contains(out, "Matched:  1") {
		t.Errorf("jobs show: %v\n%s", err, out)
	}
	for _, c := range []admin.Command{admin.JobsShow, admin.JobsCancel, admin.JobsWatch} {
		if _, err := run(c, admin.Options{ID: "job_00000000000000000000000000000000"}); err == nil || !strings.Contains(err.Error(), "no deletion job") {
			t.Errorf("an unknown job: %v, want a clear error", err)
		}
	}

	watched := &lineSignal{written: make(chan struct{})}
	watchErr := make(chan error, 1)
	go func() { watchErr <- admin.JobsWatch.Run(ctx, client, admin.Options{ID: job.ID, JSON: true}, watched) }()
	<-watched.written // it follows the job
	if out, err := run(admin.JobsCancel, admin.Options{ID: job.ID}); err != nil || !strings.Contains(out, "Canceled job "+job.ID) {
		t.Fatalf("jobs cancel: %v %s", err, out)
	}
	if err := <-watchErr; err == nil || !strings.Contains(err.Error(), "CANCELED") {
		t.Errorf("jobs watch of a canceled job: %v, want an error saying CANCELED", err)
	}
	lines := jobLines(t, watched.String())
	if first, last := lines[0], lines[len(lines)-1]; first.Status != "QUEUED" || last.Status != "CANCELED" {
		t.Errorf("jobs watch printed %+v, want QUEUED first and CANCELED last", lines)
	}
	if out, err := run(admin.JobsCancel, admin.Options{ID: job.ID}); err != nil || !strings.Contains(out, "already ended (CANCELED)") {
		t.Errorf("canceling again: %v %s", err, out)
	}
	if got := client.DeletionJob.GetX(ctx, job.ID); got.Status != deletionjob.StatusCANCELED {
		t.Errorf("job %s", got.Status)
	}
	env.AssertIntact(kept)
}

// TestUsersDeleteRerunTakesOver: a users delete killed while it ran the
// job leaves it RUNNING under a lease nobody renews; run again, with no
// server, the command finds that job (no second one), takes it once the
// lease has ended and finishes it.
func TestUsersDeleteRerunTakesOver(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	ctx := context.Background()
	userID, _ := env.NewUser()
	seedRecords(t, env, userID, 1200)
	killed, err := env.App.Jobs.StartUserErase(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	// As the killed run left it: claimed once, its lease run out.
	env.Client().DeletionJob.UpdateOneID(killed.ID).SetStatus(deletionjob.StatusRUNNING).
		SetAttempts(1).SetStartedAt(time.Now().Add(-2 * time.Minute)).
		SetNextAttemptAt(time.Now().Add(-time.Minute)).ExecX(ctx)

	var out bytes.Buffer
	eraseCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := admin.RunErase(eraseCtx, env.Client(), env.App.Jobs, quietLogger(), admin.Options{ID: userID, JSON: true}, &out); err != nil {
		t.Fatalf("users delete again: %v\n%s", err, out.String())
	}
	lines := jobLines(t, out.String())
	if last := lines[len(lines)-1]; last.JobID != killed.ID || last.Status != "SUCCEEDED" || last.UploadsDeleted != 1200 || last.KeysRevoked != 0 {
		t.Errorf("the rerun ended with %+v, want job %s SUCCEEDED, 1200 deleted, no key left to revoke", last, killed.ID)
	}
	if n := env.Client().DeletionJob.Query().CountX(ctx); n != 1 || env.Client().User.Query().Where(user.ID(userID)).ExistX(ctx) {
		t.Errorf("%d jobs; the user is left: %v", n, env.Client().User.Query().Where(user.ID(userID)).ExistX(ctx))
	}
}
