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
// not timed).
// The clock runs from the first call until ListObjectsV2 finds the bucket
// empty; the bucket is polled every emptyPoll once the last call has
// returned (until then it cannot be empty, and listing a large bucket
// meanwhile would load the S3 server).
//
//	ceiling         DeleteObjects, 1,000 keys a request, one request after
//	                another from one client, as the purger sends them; no
//	                database, no service: the most any bulk erase can reach
//	delete-uploads  POST /graphql deleteUploads(ids: $ids), 1,000 ids a call
//	delete-where    POST /graphql deleteUploadsWhere(where: {}) until hasMore
//	                is false
//	users-delete    admin.EraseUser on the way's app, in this process: what
//	                `users delete --id` runs, minus starting a process
//
// It prints each way's uploads/s and its ratio to the ceiling's objects/s,
// the time the service spent in S3 requests and in serving /graphql (from
// its own metrics), and then checks that every way left no record, no
// purge note and no object. Figures only: nothing is asserted about time.
//
// With -cpuprofile FILE, each way's timed part is profiled into its own
// file, FILE with the way's name before the extension (erase.prof ->
// erase.delete-uploads.prof):
//
//	go tool pprof -top -cum erase.delete-uploads.prof

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/admin"
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
	{"delete-where", "POST /graphql deleteUploadsWhere(where: {}) until hasMore is false", (*eraseRun).deleteUploadsWhere},
	{"users-delete", "admin.EraseUser on the way's app, in this process (`users delete --id` minus starting a process)", (*eraseRun).eraseUser},
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
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	names := []string{ceilingName}
	for _, w := range chosen {
		names = append(names, w.name)
	}
	target, err := startS3(ctx, o, dir, names, &cleanups)
	if err != nil {
		return err
	}
	loadAtStart := loadAverage()
	ceiling, err := eraseCeiling(ctx, o, target)
	if err != nil {
		return fmt.Errorf("%s: %w", ceilingName, err)
	}
	var results []eraseResult
	for _, w := range chosen {
		r, err := eraseOneWay(ctx, o, w, target, filepath.Join(dir, w.name))
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		results = append(results, r)
	}
	printErase(stdout, o, target, loadAtStart, chosen, ceiling, results)
	var failed []string
	for _, r := range results {
		if r.left.records+r.left.purges+r.left.objects > 0 || (r.way == "users-delete" && r.left.users > 0) {
			failed = append(failed, r.way)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s left records, purge notes, objects or the user behind", strings.Join(failed, ", "))
	}
	return nil
}

// eraseCeiling removes -uploads objects of a bucket of their own with
// DeleteObjects, deleteObjectsKeys a request, one after another from one
// client, as the purger does: the S3 server's own rate.
func eraseCeiling(ctx context.Context, o options, t *s3Target) (eraseResult, error) {
	r := eraseResult{way: ceilingName, n: o.uploads}
	bucket := t.buckets[ceilingName]
	owner := user{id: ids.NewUser()}
	objects := make([]seededUpload, o.uploads)
	for i := range objects {
		objects[i] = seededUpload{id: ids.NewUpload(), owner: owner}
	}
	fmt.Fprintf(os.Stderr, "erase: %s: seeding %d objects\n", ceilingName, len(objects))
	if err := putObjects(ctx, t.client, bucket, objects); err != nil {
		return r, err
	}
	flushFilesystems()
	runtime.GC()
	fmt.Fprintf(os.Stderr, "erase: %s: erasing\n", ceilingName)
	stop, err := startProfile(o, ceilingName)
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
	owner   user
	uploads []seededUpload
}

// eraseOneWay starts a fresh service, seeds its user, erases the uploads
// the way w does, and stops the service.
func eraseOneWay(ctx context.Context, o options, w eraseWay, t *s3Target, dir string) (r eraseResult, err error) {
	r = eraseResult{way: w.name, n: o.uploads}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	bucket := t.buckets[w.name]
	svc, db, a, err := startService(ctx, o, dir, bucket, t, &cleanups)
	if err != nil {
		return r, err
	}
	if r.sqlite, err = sqliteSettings(ctx, db); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "erase: %s: seeding %d uploads\n", w.name, o.uploads)
	users, err := seedUsers(ctx, db, 1)
	if err != nil {
		return r, err
	}
	uploads, err := seedUploads(ctx, db, t.client, bucket, users, o.uploads)
	if err != nil {
		return r, err
	}
	// The seed's WAL is checkpointed, and its files written, now rather
	// than during the timed part.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return r, err
	}
	flushFilesystems()
	runtime.GC()
	fmt.Fprintf(os.Stderr, "erase: %s: erasing\n", w.name)
	e := &eraseRun{name: w.name, svc: svc, app: a, owner: users[0], uploads: uploads}
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
	emptied, err := waitEmpty(ctx, t, bucket)
	stop()
	if err != nil {
		return r, err
	}
	r.elapsed, r.drain = emptied.Sub(began), emptied.Sub(lastCall)
	// A purge's note goes just after its object: the checks wait for the
	// notes (not timed).
	if r.notesAfter, err = waitNoNotes(ctx, db); err != nil {
		return r, err
	}
	if r.served, err = servedSums(a); err != nil {
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
		if err := db.QueryRowContext(ctx, c.query).Scan(c.into); err != nil {
			return r, err
		}
	}
	r.left.objects, err = countObjects(ctx, t.client, bucket)
	return r, err
}

// deleteUploadsPages sends the seeded ids in pages of graph.MaxDeleteIDs,
// as a client that knows them would.
func (e *eraseRun) deleteUploadsPages(ctx context.Context) (calls int, err error) {
	const mutation = `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds notFoundIds } }`
	for page := range slices.Chunk(e.uploads, graph.MaxDeleteIDs) {
		uploadIDs := make([]string, len(page))
		for i, u := range page {
			uploadIDs[i] = u.id
		}
		var data struct {
			DeleteUploads struct{ DeletedUploadIDs, NotFoundIDs []string }
		}
		if err := e.graphql(ctx, mutation, map[string]any{"ids": uploadIDs}, &data); err != nil {
			return calls, err
		}
		calls++
		if got := data.DeleteUploads; len(got.DeletedUploadIDs) != len(uploadIDs) || len(got.NotFoundIDs) > 0 {
			return calls, fmt.Errorf("deleteUploads of %d ids: %d deleted, %d not found",
				len(uploadIDs), len(got.DeletedUploadIDs), len(got.NotFoundIDs))
		}
	}
	return calls, nil
}

// deleteUploadsWhere calls deleteUploadsWhere(where: {}) until hasMore is
// false.
func (e *eraseRun) deleteUploadsWhere(ctx context.Context) (calls int, err error) {
	const mutation = `mutation { deleteUploadsWhere(where: {}) { deletedCount matchedCount hasMore } }`
	deleted := 0
	for {
		var data struct {
			DeleteUploadsWhere struct {
				DeletedCount, MatchedCount int
				HasMore                    bool
			}
		}
		if err := e.graphql(ctx, mutation, nil, &data); err != nil {
			return calls, err
		}
		calls++
		deleted += data.DeleteUploadsWhere.DeletedCount
		if !data.DeleteUploadsWhere.HasMore {
			break
		}
		if calls > len(e.uploads)/graph.MaxDeleteWhere+10 {
			return calls, fmt.Errorf("hasMore still true after %d calls (%d deleted)", calls, deleted)
		}
	}
	if deleted != len(e.uploads) {
		return calls, fmt.Errorf("deleteUploadsWhere deleted %d of %d", deleted, len(e.uploads))
	}
	return calls, nil
}

// eraseUser erases the user as `users delete --id` does, on the way's app.
func (e *eraseRun) eraseUser(ctx context.Context) (calls int, err error) {
	var erased admin.Erasure
	pprof.Do(ctx, pprof.Labels("side", "service", "scenario", e.name, "run", "service/"+e.name), func(ctx context.Context) {
		erased, err = admin.EraseUser(ctx, e.app.Client, e.app.Resolver, e.owner.id)
	})
	if err != nil {
		return 1, err
	}
	if erased.UploadsDeleted != len(e.uploads) {
		return 1, fmt.Errorf("EraseUser deleted %d of %d uploads", erased.UploadsDeleted, len(e.uploads))
	}
	return 1, nil
}

// graphql sends one operation with the user's key and decodes its data
// into data; any error in the answer is an error.
func (e *eraseRun) graphql(ctx context.Context, query string, variables map[string]any, data any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.svc.baseURL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", e.owner.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.svc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var answer struct {
		Data   json.RawMessage
		Errors []json.RawMessage
	}
	if err := json.Unmarshal(b, &answer); err != nil || resp.StatusCode != http.StatusOK || len(answer.Errors) > 0 {
		return fmt.Errorf("POST /graphql: %d %.300s", resp.StatusCode, b)
	}
	return json.Unmarshal(answer.Data, data)
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

// histogramSum is one series of one of the service's latency histograms:
// how many observations, and their total.
type histogramSum struct {
	series  string // e.g. s3 DeleteObjects, http POST /graphql
	count   int
	seconds float64
}

// servedSums reads, from the service's own /metrics, how many S3 requests
// of each operation it made and how long they took, and the same for the
// HTTP routes it served.
func servedSums(a *app.App) ([]histogramSum, error) {
	rec := httptest.NewRecorder()
	a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sums := map[string]*histogramSum{}
	var order []string
	for line := range strings.Lines(rec.Body.String()) {
		for _, h := range []struct{ metric, label, prefix string }{
			{"uploads_s3_request_duration_seconds", "operation", "S3 "},
			{"uploads_http_request_duration_seconds", "route", "HTTP "},
		} {
			rest, ok := strings.CutPrefix(line, h.metric+"_")
			if !ok {
				continue
			}
			kind, rest, _ := strings.Cut(rest, "{")
			labels, value, _ := strings.Cut(rest, "} ")
			if kind != "sum" && kind != "count" {
				continue
			}
			series := h.prefix + labelValue(labels, h.label)
			if outcome := labelValue(labels, "outcome"); outcome != "" && outcome != "ok" {
				series += " (" + outcome + ")"
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: %q: %w", line, err)
			}
			if sums[series] == nil {
				sums[series] = &histogramSum{series: series}
				order = append(order, series)
			}
			if kind == "sum" {
				sums[series].seconds = v
			} else {
				sums[series].count = int(v)
			}
		}
	}
	out := make([]histogramSum, len(order))
	for i, series := range order {
		out[i] = *sums[series]
	}
	return out, nil
}

// labelValue is the value of label in a Prometheus text series' labels.
func labelValue(labels, label string) string {
	for pair := range strings.SplitSeq(labels, ",") {
		if v, ok := strings.CutPrefix(pair, label+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// printErase prints what was measured, on what, and what was left behind.
func printErase(w io.Writer, o options, t *s3Target, loadAtStart string, chosen []eraseWay, ceiling eraseResult, results []eraseResult) {
	fmt.Fprintf(w, "bench -erase: %s %s/%s GOMAXPROCS=%d, load average at start %s, at end %s\n", runtime.Version(), runtime.GOOS,
		runtime.GOARCH, runtime.GOMAXPROCS(0), loadAtStart, loadAverage())
	fmt.Fprintf(w, "S3: %s, a bucket per way\n", t.label)
	if len(results) > 0 {
		fmt.Fprintf(w, "SQLite service: %s\n", results[0].sqlite)
	}
	limiter := fmt.Sprintf("RATE_LIMIT=%d", o.rateLimit)
	if o.rateLimit <= 0 {
		limiter = "RATE_LIMIT=0 (no limiter)"
	}
	fmt.Fprintf(w, "service: app.New + httpserver.NewServer, a fresh one per way (own DATA_DIR and bucket); %s; JSON logs at %s to io.Discard; purger running\n",
		limiter, o.logLevel)
	fmt.Fprintf(w, "each way: one user, %d uploads seeded directly (records: one SQLite transaction; objects: 16 concurrent PutObject; then sync(2); not timed);\n", o.uploads)
	fmt.Fprintf(w, "  timed from the first call until ListObjectsV2 (max-keys 1, every %v after the last call) finds the bucket empty\n", emptyPoll)
	fmt.Fprintf(w, "  %-15s DeleteObjects, 1,000 keys a request, one after another from one client; no database, no service\n", ceilingName)
	for _, way := range chosen {
		fmt.Fprintf(w, "  %-15s %s\n", way.name, way.title)
	}
	fmt.Fprintf(w, "\n%-15s %7s %6s %8s %10s %9s %7s\n", "way", "n", "calls", "seconds", "last call", "uploads/s", "ratio")
	for _, r := range append([]eraseResult{ceiling}, results...) {
		rate := float64(r.n) / r.elapsed.Seconds()
		fmt.Fprintf(w, "%-15s %7d %6d %8.2f %9.2fs %9.0f %6.2fx\n", r.way, r.n, r.calls, r.elapsed.Seconds(),
			(r.elapsed - r.drain).Seconds(), rate, rate/(float64(ceiling.n)/ceiling.elapsed.Seconds()))
	}
	fmt.Fprintf(w, "(ceiling: objects/s; last call: seconds until the last call returned; ratio: to the ceiling's objects/s)\n")
	fmt.Fprintf(w, "\nthe service's own metrics (requests, seconds in them):\n")
	for _, r := range results {
		var parts []string
		for _, s := range r.served {
			parts = append(parts, fmt.Sprintf("%s %d %.2fs", s.series, s.count, s.seconds))
		}
		fmt.Fprintf(w, "  %-15s %s\n", r.way, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	for _, r := range results {
		userLeft := "user kept"
		if r.left.users == 0 {
			userLeft = "user deleted"
		}
		fmt.Fprintf(w, "check %-15s: %d upload records, %d purge notes, %d objects in its bucket, %s",
			r.way, r.left.records, r.left.purges, r.left.objects, userLeft)
		if r.notesAfter > emptyPoll {
			fmt.Fprintf(w, " (the last purge notes went %.2fs after the last object)", r.notesAfter.Seconds())
		}
		fmt.Fprintln(w)
	}
}
