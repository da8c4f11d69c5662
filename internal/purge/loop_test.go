package purge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestPassPurgesEverythingDue: a pass takes every due purge, the first few
// one by one and the rest in one DeleteObjects request, and leaves the
// purges that are not due yet alone.
func TestPassPurgesEverythingDue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	const n = 10
	keys := w.storeObjects(n + 1)
	w.due(keys[:n]...)
	notYet := w.row(w.queue(w.Bucket, time.Now().Add(time.Hour), keys[n])[0].ID) // as stored
	traffic := w.watchS3()

	attempted, purged, err := w.purger().RunOnce(context.Background())
	if err != nil || attempted != n || purged != n {
		t.Fatalf("RunOnce = %d attempted, %d purged, %v; want %d and %d", attempted, purged, err, n, n)
	}
	if requests, batched := traffic.deleteObjects(); requests != 1 || batched != n-purge.OutageThreshold {
		t.Errorf("%d DeleteObjects requests for %d keys, want 1 for the %d after the first %d",
			requests, batched, n-purge.OutageThreshold, purge.OutageThreshold)
	}
	for _, key := range keys[:n] {
		if w.ObjectExists(key) {
			t.Errorf("object %s left in the bucket", key)
		}
	}
	if !w.ObjectExists(keys[n]) || traffic.asked(keys[n]) {
		t.Error("the purge that is not due yet was attempted")
	}
	if row := w.row(notYet.ID); row == nil || row.Attempts != 0 || !row.NextAttemptAt.Equal(notYet.NextAttemptAt) {
		t.Errorf("the purge not due yet was changed: %+v", row)
	}
	if pending := w.pending(); pending != 1 {
		t.Errorf("%d purges pending, want only the one not due yet", pending)
	}
	w.notLogged("finish purges", "will retry")
}

// TestOutageLeavesTheBacklogDue: when S3 fails the first purges of a pass,
// it is most likely down; the pass stops there instead of claiming, failing
// and pushing back every other purge, which stay due for the next pass.
func TestOutageLeavesTheBacklogDue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *config.Config) { c.PurgeMaxBackoff = time.Hour })
	const n = 10
	keys := w.storeObjects(n)
	jobs := w.due(keys...)
	for i, job := range jobs {
		jobs[i] = w.row(job.ID) // as stored
	}

	w.S3.SetMode(faultproxy.Refuse)
	attempted, purged, err := w.purger().RunOnce(context.Background())
	if err != nil || attempted != purge.OutageThreshold || purged != 0 {
		t.Fatalf("RunOnce during an outage = %d attempted, %d purged, %v; want %d attempted, none purged",
			attempted, purged, err, purge.OutageThreshold)
	}
	for i, job := range jobs {
		row := w.row(job.ID)
		switch {
		case row == nil:
			t.Fatalf("purge %d done although S3 is down", i)
		case i < purge.OutageThreshold:
			if row.Attempts != 1 || !row.NextAttemptAt.After(time.Now()) || row.LastError == "" {
				t.Errorf("probed purge %d: attempts %d, due %s, error %q; want one failed attempt, backing off",
					i, row.Attempts, row.NextAttemptAt, row.LastError)
			}
		default:
			if row.Attempts != 0 || !row.NextAttemptAt.Equal(job.NextAttemptAt) || row.LastError != "" {
				t.Errorf("purge %d past the probe was touched: attempts %d, due %s (was %s), error %q",
					i, row.Attempts, row.NextAttemptAt, job.NextAttemptAt, row.LastError)
			}
		}
	}

	// Once S3 is back, the next pass takes the rest at once; the probed
	// ones wait out their backoff.
	w.S3.SetMode(faultproxy.Pass)
	attempted, purged, err = w.purger().RunOnce(context.Background())
	if rest := n - purge.OutageThreshold; err != nil || attempted != rest || purged != rest {
		t.Fatalf("RunOnce after the outage = %d attempted, %d purged, %v; want %d and %d", attempted, purged, err, rest, rest)
	}
	for i, key := range keys {
		if gone := !w.ObjectExists(key); gone != (i >= purge.OutageThreshold) {
			t.Errorf("object %d gone = %v after the outage", i, gone)
		}
	}
}

// TestPassAfterLosingTheFirstPurges: when another purger has claimed the
// oldest purges, a pass takes the rest (a claim skips what another holds)
// and purges them all (losing a race is no sign of an outage).
func TestPassAfterLosingTheFirstPurges(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	const n = 6
	keys := w.storeObjects(n)
	jobs := w.due(keys...)
	var taken []int
	for _, job := range jobs[:purge.OutageThreshold] {
		taken = append(taken, job.ID)
	}
	// The other purger's claim.
	err := w.Client().ObjectPurge.Update().Where(objectpurge.IDIn(taken...)).
		SetNextAttemptAt(time.Now().Add(purge.Lease)).AddAttempts(1).Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	attempted, purged, err := w.purger().RunOnce(context.Background())
	if rest := n - purge.OutageThreshold; err != nil || attempted != rest || purged != rest {
		t.Fatalf("RunOnce = %d attempted, %d purged, %v; want the %d the other purger left", attempted, purged, err, rest)
	}
	for i, key := range keys {
		if gone := !w.ObjectExists(key); gone != (i >= purge.OutageThreshold) {
			t.Errorf("object %d gone = %v; want only the other purger's left", i, gone)
		}
	}
}

// TestRunGoesOnAfterAFullBatch: after a full batch purged, Run passes again
// at once rather than after its poll interval, so that a backlog (after an
// outage) drains as fast as S3 allows.
func TestRunGoesOnAfterAFullBatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	objects := newFakeObjects()
	logs := &testenv.SyncBuffer{}
	p := w.fakePurger(objects, logs, purge.Options{PollInterval: time.Hour, MaxBackoff: time.Hour, InlineTimeout: time.Second, UploadTimeout: time.Minute})
	keys := make([]string, purge.BatchSize+5)
	for i := range keys {
		keys[i] = fmt.Sprintf("backlog/%04d", i)
	}
	w.due(keys...)

	stop := runInBackground(t, p)
	w.Eventually(10*time.Second, "the whole backlog purged without waiting an hour", func() bool {
		flush(t, p)
		n, err := w.Client().ObjectPurge.Query().Count(context.Background())
		return err == nil && n == 0
	})
	stop()
	for _, key := range keys {
		if n := objects.times(key); n != 1 {
			t.Fatalf("object %s removed %d times, want once", key, n)
		}
	}
	if strings.Contains(logs.String(), "purge pass failed") {
		t.Errorf("a pass that went well was logged as failed:\n%s", logs)
	}
}

// TestRunWaitsForItsPollInterval: after a pass that was not a full batch,
// Run waits for its poll interval instead of querying the database again
// and again.
func TestRunWaitsForItsPollInterval(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	objects := newFakeObjects()
	p := w.fakePurger(objects, &testenv.SyncBuffer{}, purge.Options{PollInterval: time.Hour, MaxBackoff: time.Hour, InlineTimeout: time.Second, UploadTimeout: time.Minute})
	w.due("first")
	ctx, cancel := context.WithCancel(context.Background())
	tick, passes, returned := make(chan time.Time), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(returned)
		p.RunTicking(ctx, tick, func() {
			select {
			case passes <- struct{}{}:
			case <-ctx.Done():
			}
		})
	}()
	defer func() { cancel(); <-returned }()
	awaitPass := func(what string) {
		t.Helper()
		select {
		case <-passes:
		case <-time.After(10 * time.Second):
			t.Fatalf("no pass: %s", what)
		}
	}

	awaitPass("the first")
	if objects.times("first") != 1 {
		t.Fatalf("the first pass removed the due object %d times, want once", objects.times("first"))
	}
	w.due("second")
	// Run takes the tick only when waiting for it; one that passes again
	// without waiting reports a pass first.
	select {
	case tick <- time.Now():
	case <-passes:
		t.Fatal("Run passed again without waiting for its poll interval")
	case <-time.After(10 * time.Second):
		t.Fatal("Run neither waited for its poll interval nor passed again")
	}
	awaitPass("the one after the poll interval")
	if objects.times("second") != 1 {
		t.Errorf("the pass after the poll interval removed the due object %d times, want once", objects.times("second"))
	}
}

// TestRunLogsAFailedPass: a pass that fails (here, the database is gone)
// is logged, and Run goes on.
func TestRunLogsAFailedPass(t *testing.T) {
	t.Parallel()
	client, err := database.Open(context.Background(), database.SQLiteURL(t.TempDir()+"/purges.db"))
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	logs := &testenv.SyncBuffer{}
	p := purge.New(client, newFakeObjects(), newLogger(logs), purge.Options{PollInterval: 10 * time.Millisecond, MaxBackoff: time.Hour, InlineTimeout: time.Second, UploadTimeout: time.Minute})
	stop := runInBackground(t, p)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs.String(), "purge pass failed") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("want every failed pass logged, got:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
}

// TestQueueStats: the backlog the metrics report counts the purges that
// are overdue (due, or failed and waiting to retry), not those waiting to
// be due (the trash window): a trash full for days reads 0 while the
// purger keeps up. The age is how long the purge due longest has been due,
// not how long ago it was created.
func TestQueueStats(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	ctx := context.Background()
	now := time.Now()
	add := func(key string, created, next time.Time, lastError string) {
		w.Client().ObjectPurge.Create().SetBucket(w.Bucket).SetObjectKey(key).SetUploadID("upl_" + key).
			SetCreatedAt(created).SetNextAttemptAt(next).SetLastError(lastError).SaveX(ctx)
	}
	for _, step := range []struct {
		name           string
		add            func()
		overdue        int
		dueFor, within time.Duration
	}{
		{"empty", func() {}, 0, 0, 0},
		{"in the trash for a week more", func() { add("trash", now.Add(-48*time.Hour), now.Add(7*24*time.Hour), "") }, 0, 0, 0},
		{"claimed for its first attempt", func() { add("claimed", now.Add(-time.Second), now.Add(time.Minute), "") }, 0, 0, 0},
		{"failed, backing off", func() { add("failed", now.Add(-time.Hour), now.Add(time.Minute), "SlowDown") }, 1, 0, 0},
		{"out of the trash 10m ago", func() { add("expired", now.Add(-72*time.Hour), now.Add(-10*time.Minute), "") }, 2, 10 * time.Minute, time.Minute},
		{"due a minute ago", func() { add("due", now.Add(-time.Minute), now.Add(-time.Minute), "") }, 3, 10 * time.Minute, time.Minute},
	} {
		step.add()
		overdue, dueFor, err := w.purger().QueueStats(ctx)
		if err != nil || overdue != step.overdue || dueFor < step.dueFor || dueFor > step.dueFor+step.within {
			t.Errorf("%s: QueueStats = %d overdue, due for %s, %v; want %d, %s (+%s)", step.name, overdue, dueFor, err, step.overdue, step.dueFor, step.within)
		}
	}
	if n := w.pending(); n != 5 {
		t.Errorf("%d purges pending in all, want 5", n)
	}
}

// runInBackground runs p.Run until the returned stop is called, which
// fails the test if Run does not return once cancelled.
func runInBackground(t *testing.T, p *purge.Purger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() { p.Run(ctx, nil); close(returned) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-returned:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
