package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/testenv"
)

// seed makes n uploads of userID directly in the database (FAILED, with no
// object) and returns their ids; withObjects of them, the first, are
// COMPLETED with an object in the bucket.
func seed(t *testing.T, env *testenv.Env, userID string, n, withObjects int) []string {
	t.Helper()
	ctx := context.Background()
	creates := make([]*ent.UploadCreate, n)
	const writers = 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				c := env.Client().Upload.Create().SetOwnerID(userID).SetFilename(fmt.Sprintf("f%05d", i)).
					SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED)
				if i < withObjects {
					key := fmt.Sprintf("uploads/%s/%05d", userID, i)
					if err := env.Direct.Put(ctx, key, strings.NewReader("x"), 1, "text/plain", nil); err != nil {
						t.Error(err)
						return
					}
					c.SetSize(1).SetStatus(upload.StatusCOMPLETED).SetBucket(env.Bucket).SetObjectKey(key)
				}
				creates[i] = c
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var ids []string
	for part := range slices.Chunk(creates, 1000) {
		for _, u := range env.Client().Upload.CreateBulk(part...).SaveX(ctx) {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

func start(t *testing.T, env *testenv.Env, userID string, where *ent.UploadWhereInput) *ent.DeletionJob {
	t.Helper()
	job, err := env.App.Jobs.Start(context.Background(), jobs.Filter{OwnerID: userID, Where: where, Actor: audit.CLI})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// wait follows a job with Watch to its end, for at most within, and
// returns its final state; it fails the test if a count ever goes back.
func wait(t *testing.T, env *testenv.Env, jobID string, within time.Duration) *ent.DeletionJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	states, err := env.App.Jobs.Watch(ctx, jobID, jobs.AnyOwner)
	if err != nil {
		t.Fatal(err)
	}
	var last *ent.DeletionJob
	for job := range states {
		if last != nil && job.DeletedCount < last.DeletedCount {
			t.Errorf("deletedCount went from %d to %d", last.DeletedCount, job.DeletedCount)
		}
		last = job
	}
	if last == nil || !jobs.Finished(last) {
		t.Fatalf("Watch ended before the job did: %+v", last)
	}
	return last
}

func uploadsOf(t *testing.T, env *testenv.Env, userID string) int {
	t.Helper()
	return env.Client().Upload.Query().Where(upload.OwnerID(userID)).CountX(context.Background())
}

func deletedEvents(t *testing.T, env *testenv.Env, userID string) int {
	t.Helper()
	return env.Client().AuditEvent.Query().
		Where(auditevent.OwnerID(userID), auditevent.KindEQ(auditevent.KindDELETED)).
		CountX(context.Background())
}

// TestJobDeletesEverything: a job over 25,000 uploads (2,500 of them with
// objects) runs to the end in the background: every count right, no
// record, object or pending purge left, and one audit event per upload.
func TestJobDeletesEverything(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, _ := env.NewUser()
	const total, withObjects = 25_000, 2_500
	seed(t, env, userID, total, withObjects)
	job := start(t, env, userID, nil)
	if job.Status != deletionjob.StatusQUEUED || job.MatchedCount != total {
		t.Fatalf("started: %s, matched %d", job.Status, job.MatchedCount)
	}
	done := wait(t, env, job.ID, 5*time.Minute)
	if done.Status != deletionjob.StatusSUCCEEDED || done.MatchedCount != total || done.DeletedCount != total ||
		done.FailedCount != 0 || done.Error != "" || done.StartedAt == nil || done.FinishedAt == nil {
		t.Errorf("finished: %s matched %d deleted %d failed %d error %q started %v finished %v", done.Status,
			done.MatchedCount, done.DeletedCount, done.FailedCount, done.Error, done.StartedAt, done.FinishedAt)
	}
	env.Eventually(time.Minute, "every purge done", func() bool { return env.PendingPurges() == 0 })
	if n, objects := uploadsOf(t, env, userID), len(env.ObjectKeys()); n+objects != 0 {
		t.Errorf("left: %d records, %d objects", n, objects)
	}
	if n := deletedEvents(t, env, userID); n != total {
		t.Errorf("%d deleted events, want %d", n, total)
	}
}

// TestJobLeavesLaterUploads: uploads created after the job started are not
// its own, even when the filter matches them; what matched is deleted.
func TestJobLeavesLaterUploads(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, key := env.NewUser()
	seed(t, env, userID, 1500, 3)
	job := start(t, env, userID, &ent.UploadWhereInput{})
	later := env.MustUpload(key, "later.txt", []byte("later"))
	if ran, err := env.App.Jobs.RunOnce(context.Background()); ran != 1 || err != nil {
		t.Fatalf("RunOnce: %d, %v", ran, err)
	}
	done, err := env.App.Jobs.Get(context.Background(), job.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != deletionjob.StatusSUCCEEDED || done.MatchedCount != 1500 || done.DeletedCount != 1500 {
		t.Errorf("finished: %s matched %d deleted %d", done.Status, done.MatchedCount, done.DeletedCount)
	}
	env.AssertIntact(later)
	if n := uploadsOf(t, env, userID); n != 1 {
		t.Errorf("%d uploads left, want the later one only", n)
	}
}

// TestJobCancelMidway: a job canceled between two batches stops there:
// what it deleted stays deleted, deletedCount says how many, and no batch
// commits after the cancel.
func TestJobCancelMidway(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	const total = 3500
	seed(t, env, userID, total, 0)
	job := start(t, env, userID, nil)
	var canceled *ent.DeletionJob
	batches := 0
	jobs.SetBeforeBatch(env.App.Jobs, func(ctx context.Context, jobID string, _ int) error {
		if batches++; batches == 2 { // one batch committed, the next about to be read
			var err error
			if canceled, err = env.App.Jobs.Cancel(ctx, jobID, userID); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	if _, err := env.App.Jobs.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if canceled == nil || canceled.Status != deletionjob.StatusCANCELED || canceled.DeletedCount != 1000 || canceled.FinishedAt == nil {
		t.Fatalf("Cancel answered %+v, want CANCELED with 1000 deleted", canceled)
	}
	after, err := env.App.Jobs.Get(context.Background(), job.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != deletionjob.StatusCANCELED || after.DeletedCount != 1000 {
		t.Errorf("after the run: %s, %d deleted", after.Status, after.DeletedCount)
	}
	if n := uploadsOf(t, env, userID); n != total-1000 {
		t.Errorf("%d uploads left, want %d: a batch committed after the cancel", n, total-1000)
	}
	// Canceling again changes nothing.
	again, err := env.App.Jobs.Cancel(context.Background(), job.ID, userID)
	if err != nil || again.Status != deletionjob.StatusCANCELED || again.DeletedCount != 1000 {
		t.Errorf("cancel again: %+v, %v", again, err)
	}
	// Nothing is left to run.
	if ran, err := env.App.Jobs.RunOnce(context.Background()); ran != 0 || err != nil {
		t.Errorf("RunOnce after cancel: %d, %v", ran, err)
	}
}

// TestJobLostLease: a worker whose lease ended while it was between two
// batches, and whose job another worker took over, deletes nothing more
// (its next batch rolls back); the new holder finishes the job, and each
// upload is deleted and counted once.
func TestJobLostLease(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	const total = 3500
	seed(t, env, userID, total, 10)
	job := start(t, env, userID, nil)
	ctx := context.Background()

	// The second worker: another instance's, on the same database and bucket.
	second := jobs.New(env.Client(), env.App.Resolver, slog.New(slog.DiscardHandler), jobs.Options{})
	secondClaimed, releaseSecond := make(chan struct{}), make(chan struct{})
	var secondOnce sync.Once
	jobs.SetBeforeBatch(second, func(context.Context, string, int) error {
		secondOnce.Do(func() { close(secondClaimed); <-releaseSecond })
		return nil
	})
	secondRan := make(chan error, 1)

	batches := 0
	var leftWhenLost int
	jobs.SetBeforeBatch(env.App.Jobs, func(ctx context.Context, jobID string, _ int) error {
		if batches++; batches != 2 {
			return nil
		}
		// One batch done. The lease ends (as if this worker had stalled
		// past it), and the second worker claims the job.
		env.Client().DeletionJob.UpdateOneID(jobID).SetNextAttemptAt(time.Now().Add(-time.Second)).ExecX(ctx)
		go func() { _, err := second.RunJob(ctx, jobID); secondRan <- err }()
		<-secondClaimed
		leftWhenLost = uploadsOf(t, env, userID)
		return nil
	})
	if _, err := env.App.Jobs.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := uploadsOf(t, env, userID); n != leftWhenLost || n != total-1000 {
		t.Fatalf("the first worker went on after losing its lease: %d uploads left, %d when it lost it", n, leftWhenLost)
	}
	close(releaseSecond)
	if err := <-secondRan; err != nil {
		t.Fatal(err)
	}
	done, err := env.App.Jobs.Get(ctx, job.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != deletionjob.StatusSUCCEEDED || done.DeletedCount != total || done.Attempts != 2 {
		t.Errorf("finished: %s, %d deleted (want %d), %d claims", done.Status, done.DeletedCount, total, done.Attempts)
	}
	if n := deletedEvents(t, env, userID); n != total {
		t.Errorf("%d deleted events, want %d: deleted twice", n, total)
	}
	if n := uploadsOf(t, env, userID); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

// TestJobUserErase: a USER_ERASE job revokes the user's keys when it
// starts, deletes every upload (one that arrived after it started too),
// then, with its success, the user, their keys and webhooks, and their
// other jobs; it stays readable by an operator.
func TestJobUserErase(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	ctx := context.Background()
	userID, key := env.NewUser()
	_, otherKey := env.NewUser()
	kept := env.MustUpload(otherKey, "kept.txt", []byte("kept"))
	seed(t, env, userID, 2100, 20)
	earlier := start(t, env, userID, nil)
	env.Client().WebhookEndpoint.Create().SetOwnerID(userID).SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).ExecX(ctx)

	job, err := env.App.Jobs.StartUserErase(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != deletionjob.StatusQUEUED || job.MatchedCount != 2100 {
		t.Fatalf("started: %s, matched %d", job.Status, job.MatchedCount)
	}
	if res := env.GraphQL(key, `{ viewer { id } }`, nil); len(res.Errors) == 0 {
		t.Error("the user's key still works once the erase started")
	}
	if again, err := env.App.Jobs.StartUserErase(ctx, userID); err != nil || again.ID != job.ID {
		t.Errorf("started again while the first is queued: %v, %v; want the first", again, err)
	}
	// One arrives anyway (a request authenticated just before).
	seed(t, env, userID, 1, 0)
	// Run as a runner does: a run that failed (on PostgreSQL the last
	// step can meet a "purged" event's webhook delivery committing at that
	// moment, a foreign key race) is run again once due.
	done := runToEnd(t, env, job.ID)
	if done.Status != deletionjob.StatusSUCCEEDED {
		t.Fatalf("finished: %s (%s)", done.Status, done.Error)
	}
	if done.DeletedCount != 2101 || done.MatchedCount != 2100 {
		t.Errorf("deleted %d of %d matched, want 2101: the one that arrived after the start too", done.DeletedCount, done.MatchedCount)
	}
	if exists := env.Client().User.Query().Where(user.ID(userID)).ExistX(ctx); exists {
		t.Error("the user is still there")
	}
	if n := uploadsOf(t, env, userID); n != 0 {
		t.Errorf("%d uploads left", n)
	}
	if n := env.Client().WebhookEndpoint.Query().CountX(ctx) + env.Client().APIKey.Query().Where(apikey.OwnerID(userID)).CountX(ctx); n != 0 {
		t.Errorf("%d endpoints and keys left", n)
	}
	if _, err := env.App.Jobs.Get(ctx, earlier.ID, jobs.AnyOwner); err != jobs.ErrNotFound {
		t.Errorf("the user's other job: %v, want gone with them", err)
	}
	env.Eventually(time.Minute, "every purge done", func() bool { return env.PendingPurges() == 0 })
	if keys := env.ObjectKeys(); len(keys) != 1 || keys[0] != kept.ObjectKey {
		t.Errorf("objects left: %v, want only the other user's", keys)
	}
	env.AssertIntact(kept)
	if _, err := env.App.Jobs.StartUserErase(ctx, userID); !errors.Is(err, jobs.ErrNoSuchUser) {
		t.Errorf("erase a user that is gone: %v", err)
	}
}

// TestJobWatchedFromAnotherInstance: a job run by one instance is seen to
// its end by a watcher on another, and counted in /metrics.
func TestJobWatchedFromAnotherInstance(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	seed(t, env, userID, 2500, 0)
	job := start(t, env, userID, nil)
	runner := env.NewInstance() // its runner takes the job
	// A watcher that only heard of this instance's changes would wait
	// for ever: the other instance's are read every PollInterval (1 s).
	done := wait(t, env, job.ID, 30*time.Second)
	if done.Status != deletionjob.StatusSUCCEEDED || done.DeletedCount != 2500 {
		t.Errorf("seen from the watching instance: %s, %d deleted", done.Status, done.DeletedCount)
	}
	metrics := runner.Do(http.MethodGet, "/metrics", nil, nil).Body
	if !strings.Contains(metrics, `uploads_deletion_jobs_total{status="succeeded"} 1`) {
		t.Errorf("/metrics of the instance that ran it:\n%s", grep(metrics, "deletion_jobs"))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestJobsPruned: the janitor prunes jobs finished longer than
// JOB_RETENTION ago, and keeps newer ones and those still running.
func TestJobsPruned(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true, NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.JobRetention = 720 * time.Hour
	}})
	ctx := context.Background()
	userID, _ := env.NewUser()
	old := start(t, env, userID, nil)
	recent := start(t, env, userID, nil)
	running := start(t, env, userID, nil)
	longAgo := time.Now().Add(-env.Config.JobRetention - time.Hour)
	env.Client().DeletionJob.UpdateOneID(old.ID).SetStatus(deletionjob.StatusSUCCEEDED).SetFinishedAt(longAgo).ExecX(ctx)
	env.Client().DeletionJob.UpdateOneID(recent.ID).SetStatus(deletionjob.StatusSUCCEEDED).SetFinishedAt(time.Now()).ExecX(ctx)
	env.Client().DeletionJob.UpdateOneID(running.ID).SetStatus(deletionjob.StatusRUNNING).ExecX(ctx)
	if _, _, err := env.App.Janitor.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := env.App.Jobs.List(ctx, userID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].ID != running.ID || left[1].ID != recent.ID {
		t.Errorf("left: %v, want the running and the recent job, newest first", left)
	}
}

// TestJobHandedBackOnShutdown: a worker stopped between two batches (its
// instance shutting down) hands the job back due at once: another takes it
// without waiting for the lease, and finishes it, counting each upload once.
func TestJobHandedBackOnShutdown(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	const total = 2500
	seed(t, env, userID, total, 0)
	job := start(t, env, userID, nil)
	ctx, shutdown := context.WithCancel(context.Background())
	batches := 0
	jobs.SetBeforeBatch(env.App.Jobs, func(context.Context, string, int) error {
		if batches++; batches == 2 {
			shutdown()
		}
		return nil
	})
	if _, err := env.App.Jobs.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	other := jobs.New(env.Client(), env.App.Resolver, slog.New(slog.DiscardHandler), jobs.Options{})
	if ran, err := other.RunJob(context.Background(), job.ID); !ran || err != nil {
		t.Fatalf("another worker could not take the job at once: %v, %v", ran, err)
	}
	done, err := env.App.Jobs.Get(context.Background(), job.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != deletionjob.StatusSUCCEEDED || done.DeletedCount != total || deletedEvents(t, env, userID) != total {
		t.Errorf("finished: %s, %d deleted, %d events; want %d", done.Status, done.DeletedCount, deletedEvents(t, env, userID), total)
	}
}

// TestJobClaimedOnce: workers claiming at once take a job once.
func TestJobClaimedOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	seed(t, env, userID, 1500, 0)
	job := start(t, env, userID, nil)
	const workers = 4
	var ran sync.WaitGroup
	claims := make(chan bool, workers)
	for range workers {
		w := jobs.New(env.Client(), env.App.Resolver, slog.New(slog.DiscardHandler), jobs.Options{})
		ran.Go(func() {
			took, err := w.RunJob(context.Background(), job.ID)
			if err != nil {
				t.Error(err)
			}
			claims <- took
		})
	}
	ran.Wait()
	close(claims)
	took := 0
	for c := range claims {
		if c {
			took++
		}
	}
	done, err := env.App.Jobs.Get(context.Background(), job.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	if took != 1 || done.Attempts != 1 || done.DeletedCount != 1500 || done.Status != deletionjob.StatusSUCCEEDED {
		t.Errorf("%d workers took the job; it: %s, %d claims, %d deleted", took, done.Status, done.Attempts, done.DeletedCount)
	}
}

// TestJobFails: a job whose batches keep failing is tried again, and after
// 10 claims it is FAILED, saying so, with the uploads left in failedCount;
// what it deleted stays deleted and counted.
func TestJobFails(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	const total = 1500
	seed(t, env, userID, total, 0)
	job := start(t, env, userID, nil)
	ctx := context.Background()
	batches := 0
	jobs.SetBeforeBatch(env.App.Jobs, func(context.Context, string, int) error {
		if batches++; batches == 1 {
			return nil
		}
		return errors.New("the database is down")
	})
	for claim := 1; claim <= 10; claim++ {
		if ran, err := env.App.Jobs.RunJob(ctx, job.ID); !ran || err != nil {
			t.Fatalf("claim %d: %v, %v", claim, ran, err)
		}
		after := env.Client().DeletionJob.GetX(ctx, job.ID)
		if claim < 10 {
			if after.Status != deletionjob.StatusRUNNING || !after.NextAttemptAt.After(time.Now()) {
				t.Fatalf("after failed claim %d: %s, due %s; want RUNNING, backing off", claim, after.Status, after.NextAttemptAt)
			}
			// The backoff passes.
			env.Client().DeletionJob.UpdateOneID(job.ID).SetNextAttemptAt(time.Now()).ExecX(ctx)
		}
	}
	done := env.Client().DeletionJob.GetX(ctx, job.ID)
	if done.Status != deletionjob.StatusFAILED || done.DeletedCount != 1000 || done.FailedCount != total-1000 ||
		done.Error == "" || strings.Contains(done.Error, "database is down") || done.FinishedAt == nil {
		t.Errorf("failed: %s, %d deleted, %d failed, error %q", done.Status, done.DeletedCount, done.FailedCount, done.Error)
	}
	if ran, _ := env.App.Jobs.RunJob(ctx, job.ID); ran {
		t.Error("a FAILED job was claimed again")
	}
	if n := uploadsOf(t, env, userID); n != total-1000 {
		t.Errorf("%d uploads left, want %d", n, total-1000)
	}
}

// TestJobsOfOneOwnerTakeTurns: while one of an owner's jobs runs, the
// owner's next waits, and another owner's job takes the free slot.
func TestJobsOfOneOwnerTakeTurns(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	ctx := context.Background()
	busyID, _ := env.NewUser()
	otherID, _ := env.NewUser()
	seed(t, env, busyID, 1200, 0)
	seed(t, env, otherID, 10, 0)
	first := start(t, env, busyID, &ent.UploadWhereInput{FilenameLT: ptr("f00600")})
	second := start(t, env, busyID, nil)
	others := start(t, env, otherID, nil)

	claimedFirst, releaseFirst := make(chan struct{}), make(chan struct{})
	var once sync.Once
	jobs.SetBeforeBatch(env.App.Jobs, func(context.Context, string, int) error {
		once.Do(func() { close(claimedFirst); <-releaseFirst })
		return nil
	})
	firstRan := make(chan error, 1)
	go func() { _, err := env.App.Jobs.RunJob(ctx, first.ID); firstRan <- err }()
	<-claimedFirst

	worker := jobs.New(env.Client(), env.App.Resolver, slog.New(slog.DiscardHandler), jobs.Options{})
	if ran, err := worker.RunOnce(ctx); ran != 1 || err != nil {
		t.Errorf("while the owner's first job runs, another worker ran %d jobs (%v), want the other owner's alone", ran, err)
	}
	status := func(id string) deletionjob.Status { return env.Client().DeletionJob.GetX(ctx, id).Status }
	if s := status(others.ID); s != deletionjob.StatusSUCCEEDED {
		t.Errorf("the other owner's job: %s", s)
	}
	if s := status(second.ID); s != deletionjob.StatusQUEUED {
		t.Errorf("the owner's second job: %s, want QUEUED while the first runs", s)
	}
	close(releaseFirst)
	if err := <-firstRan; err != nil {
		t.Fatal(err)
	}
	if ran, err := worker.RunOnce(ctx); ran != 1 || err != nil {
		t.Fatalf("once the first ended: ran %d, %v", ran, err)
	}
	if s1, s2 := status(first.ID), status(second.ID); s1 != deletionjob.StatusSUCCEEDED || s2 != deletionjob.StatusSUCCEEDED {
		t.Errorf("the owner's jobs: %s and %s", s1, s2)
	}
	if n := uploadsOf(t, env, busyID); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

func ptr[T any](v T) *T { return &v }

// runToEnd runs jobID here, again whenever a run leaves it unfinished and
// due (as the runner would), until it ends; it fails the test after 5 runs.
func runToEnd(t *testing.T, env *testenv.Env, jobID string) *ent.DeletionJob {
	t.Helper()
	ctx := context.Background()
	for run := 0; run < 5; run++ {
		if _, err := env.App.Jobs.RunJob(ctx, jobID); err != nil {
			t.Fatalf("RunJob: %v", err)
		}
		job, err := env.App.Jobs.Get(ctx, jobID, jobs.AnyOwner)
		if err != nil {
			t.Fatal(err)
		}
		if jobs.Finished(job) {
			return job
		}
		// Due again after its backoff: make it due now.
		env.Client().DeletionJob.UpdateOneID(jobID).SetNextAttemptAt(time.Now()).ExecX(ctx)
	}
	t.Fatalf("job %s unfinished after 5 runs:\n%s", jobID, env.Logs.String())
	return nil
}
