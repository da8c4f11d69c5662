package main

// The -erase mode (issue 9 §6): how fast one user's uploads, records and
// objects, are erased end to end, beside the S3 server's own rate for the
// same number of objects removed with DeleteObjects alone:
//
//	go run ./internal/bench -erase -uploads 100000 -s3-endpoint http://127.0.0.1:7070 \
//	    -s3-access-key KEY -s3-secret-key SECRET
//	go run ./internal/bench -erase                          # embedded S3, fewer uploads
//
// Each way gets a fresh service (startService: app.New, RATE_LIMIT=0 unless
// -rate-limit is given, its own DATA_DIR and bucket, its purger running),
// and one user with -uploads uploads seeded directly (seedUploads: records
// in one SQLite transaction, objects by concurrent PutObject; then sync(2);
// not timed). The ceiling is measured right before each way, on as many
// objects seeded alongside (the machine is shared: the load drifts over a
// run). The clock runs from the first call until ListObjectsV2 finds the
// bucket empty; the bucket is polled every emptyPoll once the last call has
// returned (until then it cannot be empty, and listing a large bucket
// meanwhile would load the S3 server).
//
//	ceiling         DeleteObjects, 1,000 keys a request, one request after
//	                another from one client, as the purger sends them; no
//	                database, no service: the most any bulk erase can reach
//	delete-uploads  POST /graphql deleteUploads(ids: $ids), 1,000 ids a call,
//	                one call after another
//	delete-uploads-2  the same calls, two at a time (a client overlapping
//	                one page's wait for S3 with the next page's transaction)
//	delete-where    POST /graphql deleteUploadsWhere(where: {}) until hasMore
//	                is false
//	users-delete    admin.EraseUser on the way's app, in this process: what
//	                `users delete --id` runs, minus starting a process
//	deletion-job    POST /graphql startDeletionJob(where: {}), then the job
//	                run to its end by the way's app (jobs.RunJob)
//	erase-job       jobs.StartUserErase, then the job run to its end by the
//	                way's app: the user erased as a job
//
// It prints each way's uploads/s and its ratio to its ceiling's objects/s,
// the time the service spent in S3 requests and in serving /graphql (from
// its own metrics), and then checks that every way left no record, no
// purge note and no object. Figures only: nothing is asserted about time.
//
// With -cpuprofile FILE, each way's timed part (and each ceiling's) is
// profiled into its own file, FILE with the way's name before the extension
// (erase.prof -> erase.delete-uploads.prof, erase.ceiling-delete-uploads.prof):
//
//	go tool pprof -top -cum erase.delete-uploads.prof

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/ids"
)

const (
	// eraseUploads is -uploads' default with -s3-endpoint: the figure.
	eraseUploads = 100_000
	// eraseUploadsEmbedded is -uploads' default on the embedded S3 server,
	// which fsyncs every PUT: seeding 100,000 objects there takes minutes.
	eraseUploadsEmbedded = 20_000
	// deleteObjectsKeys is S3's limit of keys per DeleteObjects request.
	deleteObjectsKeys = 1000
	// emptyPoll is how often the bucket is listed once the calls are done.
	emptyPoll = 10 * time.Millisecond
	// emptyWait bounds the wait for the bucket to empty after the last
	// call: long enough for the background purger to retry what the
	// inline attempts left (due after twice PURGE_INLINE_TIMEOUT).
	emptyWait = 2 * time.Minute
	// ceilingName is the ceiling's row and bucket.
	ceilingName = "ceiling"
)

// eraseWay is one way of erasing a user's uploads.
type eraseWay struct {
	name, title string
	erase       func(e *eraseRun, ctx context.Context) (calls int, err error) // a method expression of eraseRun
}

var eraseWays = []eraseWay{
	{"delete-uploads", "POST /graphql deleteUploads(ids: $ids), 1,000 ids a call, one call after another", (*eraseRun).deleteUploadsPages},
	{"delete-uploads-2", "the same calls, two at a time", (*eraseRun).deleteUploadsPagesTwo},
	{"delete-where", "POST /graphql deleteUploadsWhere(where: {}) until hasMore is false", (*eraseRun).deleteUploadsWhere},
	{"users-delete", "admin.EraseUser on the way's app, in this process (`users delete --id` minus starting a process)", (*eraseRun).eraseUser},
	{"deletion-job", "POST /graphql startDeletionJob(where: {}), the job run by the way's app in this process", (*eraseRun).deletionJob},
	{"erase-job", "jobs.StartUserErase, the job run by the way's app in this process (what `users delete` becomes)", (*eraseRun).eraseJob},
}

func eraseWayNames() string {
	names := make([]string, len(eraseWays))
	for i, w := range eraseWays {
		names[i] = w.name
	}
	return strings.Join(names, ",")
}

// eraseDefaults completes the options of -erase: the default number of
// uploads for the S3 server, and no rate limiter unless asked for.
func (o *options) eraseDefaults(fs *flag.FlagSet) error {
	rateLimitSet := false
	fs.Visit(func(f *flag.Flag) { rateLimitSet = rateLimitSet || f.Name == "rate-limit" })
	if !rateLimitSet {
		o.rateLimit = 0
	}
	if o.uploads == 0 {
		o.uploads = eraseUploads
		if o.s3Endpoint == "" {
			o.uploads = eraseUploadsEmbedded
		}
	}
	if o.uploads < 1 {
		return errors.New("want -uploads >= 1")
	}
	_, err := chosenWays(o.ways)
	return err
}

func chosenWays(list string) ([]eraseWay, error) {
	var chosen []eraseWay
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(eraseWays, func(w eraseWay) bool { return w.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown way %q (want some of %s)", name, eraseWayNames())
		}
		chosen = append(chosen, eraseWays[i])
	}
	return chosen, nil
}

// eraseResult is what one way (or the ceiling) did.
type eraseResult struct {
	way     string
	n       int
	calls   int
	elapsed time.Duration // from the first call until the bucket was seen empty
	drain   time.Duration // from the last call's return until then
	sqlite  string
	// notesAfter is how long after the bucket was empty the last purge
	// note went.
	notesAfter time.Duration
	served     []histogramSum // the service's S3 requests and HTTP routes
	left       leftovers
}

// leftovers is what a way left behind.
type leftovers struct{ records, purges, users, objects int }

func runErase(ctx context.Context, o options, stdout io.Writer) error {
	chosen, err := chosenWays(o.ways)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "uploads-bench-erase-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cleanups []func()
	defer runCleanups(&cleanups)
	names := []string{ceilingName}
	for _, w := range chosen {
		names = append(names, w.name)
	}
	target, err := startS3(ctx, o, dir, names, &cleanups)
	if err != nil {
		return err
	}
	loadAtStart := loadAverage()
	var ceilings, results []eraseResult
	for _, w := range chosen {
		ceiling, r, err := eraseOneWay(ctx, o, w, target, filepath.Join(dir, w.name))
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		ceilings, results = append(ceilings, ceiling), append(results, r)
	}
	printErase(stdout, o, target, loadAtStart, chosen, ceilings, results)
	var failed []string
	for _, r := range results {
		if r.left.records+r.left.purges+r.left.objects > 0 || ((r.way == "users-delete" || r.way == "erase-job") && r.left.users > 0) {
			failed = append(failed, r.way)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s left records, purge notes, objects or the user behind", strings.Join(failed, ", "))
	}
	return nil
}

// seedCeiling puts -uploads objects, named as uploads are, in the
// ceiling's bucket.
func seedCeiling(ctx context.Context, o options, t *s3Target) ([]seededUpload, error) {
	owner := user{id: ids.NewUser()}
	objects := make([]seededUpload, o.uploads)
	for i := range objects {
		objects[i] = seededUpload{id: ids.NewUpload(), owner: owner}
	}
	return objects, putObjects(ctx, t.client, t.buckets[ceilingName], objects)
}

// eraseCeiling removes the seeded objects with DeleteObjects,
// deleteObjectsKeys a request, one after another from one client, as the
// purger sends them: the S3 server's own rate, with no database involved.
func eraseCeiling(ctx context.Context, o options, t *s3Target, objects []seededUpload, profile string) (eraseResult, error) {
	r := eraseResult{way: ceilingName, n: len(objects)}
	bucket := t.buckets[ceilingName]
	stop, err := startProfile(o, profile)
	if err != nil {
		return r, err
	}
	defer stop()
	began := time.Now()
	for page := range slices.Chunk(objects, deleteObjectsKeys) {
		keys := make([]types.ObjectIdentifier, len(page))
		for i, u := range page {
			keys[i] = types.ObjectIdentifier{Key: aws.String(objectKey(u))}
		}
		out, err := t.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket), Delete: &types.Delete{Objects: keys, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return r, fmt.Errorf("delete objects: %w", err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return r, fmt.Errorf("delete objects: %d keys failed, e.g. %s: %s", len(out.Errors), aws.ToString(e.Key), aws.ToString(e.Code))
		}
		r.calls++
	}
	lastCall := time.Now()
	emptied, err := waitEmpty(ctx, t, bucket)
	if err != nil {
		return r, err
	}
	r.elapsed, r.drain = emptied.Sub(began), emptied.Sub(lastCall)
	return r, nil
}

// eraseRun is one way's service and the user whose uploads it erases.
type eraseRun struct {
	name    string
	svc     *side
	app     *app.App
	db      *sql.DB // the bench's own connection to the service's database
	bucket  string
	owner   user
	uploads []seededUpload
}

// eraseOneWay starts a fresh service, seeds the ceiling's objects and its
// user's uploads, measures the ceiling, erases the uploads the way w does,
// checks what is left, and stops the service. The ceiling is measured
// right before each way: on a shared machine, the load drifts over a run.
func eraseOneWay(ctx context.Context, o options, w eraseWay, t *s3Target, dir string) (ceiling, r eraseResult, err error) {
	var cleanups []func()
	defer runCleanups(&cleanups)
	svc, a, err := startService(ctx, o, dir, t.buckets[w.name], t, nil, &cleanups)
	if err != nil {
		return ceiling, r, err
	}
	fmt.Fprintf(os.Stderr, "erase: %s: seeding %d objects for the ceiling, %d uploads for the way\n", w.name, o.uploads, o.uploads)
	objects, err := seedCeiling(ctx, o, t)
	if err != nil {
		return ceiling, r, err
	}
	e := &eraseRun{name: w.name, svc: svc, app: a, db: svc.db, bucket: t.buckets[w.name]}
	if err := e.seed(ctx, t, o.uploads); err != nil {
		return ceiling, r, err
	}
	fmt.Fprintf(os.Stderr, "erase: %s: erasing\n", w.name)
	if ceiling, err = eraseCeiling(ctx, o, t, objects, ceilingName+"-"+w.name); err != nil {
		return ceiling, r, fmt.Errorf("%s: %w", ceilingName, err)
	}
	runtime.GC()
	r, err = e.measure(ctx, o, w, t)
	return ceiling, r, err
}

// seed gives the way's service one user with n uploads.
func (e *eraseRun) seed(ctx context.Context, t *s3Target, n int) error {
	users, err := seedUsers(ctx, e.db, 1)
	if err != nil {
		return err
	}
	e.owner = users[0]
	if e.uploads, err = seedUploads(ctx, e.db, t.client, e.bucket, users, n); err != nil {
		return err
	}
	// The seed's WAL is checkpointed, and its files written, now rather
	// than during the timed part.
	if _, err := e.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return err
	}
	flushFilesystems()
	runtime.GC()
	return nil
}

// measure times the way from its first call until its bucket is empty,
// then reads the service's metrics and what is left.
func (e *eraseRun) measure(ctx context.Context, o options, w eraseWay, t *s3Target) (r eraseResult, err error) {
	r = eraseResult{way: w.name, n: len(e.uploads)}
	if r.sqlite, err = sqliteSettings(ctx, e.db); err != nil {
		return r, err
	}
	currentScenario.Store(w.name)
	stop, err := startProfile(o, w.name)
	if err != nil {
		return r, err
	}
	began := time.Now()
	r.calls, err = w.erase(e, ctx)
	lastCall := time.Now()
	if err != nil {
		stop()
		return r, err
	}
	emptied, err := waitEmpty(ctx, t, e.bucket)
	stop()
	if err != nil {
		return r, err
	}
	r.elapsed, r.drain = emptied.Sub(began), emptied.Sub(lastCall)
	// A purge's note goes just after its object: the checks wait for the
	// notes (not timed).
	if r.notesAfter, err = waitNoNotes(ctx, e.db); err != nil {
		return r, err
	}
	if r.served, err = servedSums(e.app); err != nil {
		return r, err
	}
	for _, c := range []struct {
		query string
		into  *int
	}{
		{"SELECT count(*) FROM uploads", &r.left.records},
		{"SELECT count(*) FROM object_purges", &r.left.purges},
		{"SELECT count(*) FROM users", &r.left.users},
	} {
		if err := e.db.QueryRowContext(ctx, c.query).Scan(c.into); err != nil {
			return r, err
		}
	}
	r.left.objects, err = countObjects(ctx, t.client, e.bucket)
	return r, err
}

// waitEmpty lists the bucket every emptyPoll until it holds no object, and
// returns when it saw it empty.
func waitEmpty(ctx context.Context, t *s3Target, bucket string) (time.Time, error) {
	deadline := time.Now().Add(emptyWait)
	for {
		out, err := t.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
		if err != nil {
			return time.Time{}, fmt.Errorf("list objects: %w", err)
		}
		if aws.ToInt32(out.KeyCount) == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("objects still in bucket %s %v after the last call", bucket, emptyWait)
		}
		time.Sleep(emptyPoll)
	}
}

// waitNoNotes waits, at most emptyWait, until no purge note is left, and
// returns how long that took.
func waitNoNotes(ctx context.Context, db *sql.DB) (time.Duration, error) {
	began := time.Now()
	for {
		var notes int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM object_purges").Scan(&notes); err != nil {
			return 0, err
		}
		if notes == 0 || time.Since(began) > emptyWait {
			return time.Since(began), nil // the check reports the notes left
		}
		time.Sleep(emptyPoll)
	}
}

// startProfile profiles the CPU into -cpuprofile's file for name, if asked;
// the returned func stops it.
func startProfile(o options, name string) (func(), error) {
	if o.cpuprofile == "" {
		return func() {}, nil
	}
	ext := filepath.Ext(o.cpuprofile)
	f, err := os.Create(strings.TrimSuffix(o.cpuprofile, ext) + "." + name + ext)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
