package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the schemas of a run

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
)

// The -instances mode runs the service as N separate processes (the
// binary go build makes of this module, each with its own background
// workers: purger, janitor, webhook sender, jobs) on one PostgreSQL
// database and one S3 server, for each N of the list, and spreads one
// REST and GraphQL delete load over them. Processes, not app.New in this
// one: each instance then has its own Go runtime, connection pool and
// workers as in a deployment, and its CPU time is its own (read from
// /proc/PID/stat while it runs). Each N gets a fresh schema and bucket, so
// that what is left after it is its own.
//
//	go run ./internal/bench -instances 1,2,3 -database postgres://… -s3-endpoint … -s3-access-key … -s3-secret-key …
//	go run ./internal/bench -instances 1,2 -n 500        # TEST_DATABASE_URL, embedded S3
//	go run ./internal/bench -instances 1 -database sqlite # one instance on its SQLite file

// defaultInstanceUsers is how many users share the load unless -users
// says otherwise, each with one webhook endpoint (a local receiver)
// subscribed to upload.deleted and upload.purged.
const defaultInstanceUsers = 16

// instanceResult is one N's figures.
type instanceResult struct {
	instances      int
	deletes        result
	cpu            []time.Duration // per instance, from before the deletes to the end of the drain
	purgeLag       []time.Duration // upload.deleted's timestamp to upload.purged's
	webhookLag     []time.Duration // upload.deleted's timestamp to its arrival, in the order of the timestamps
	deliveryWindow time.Duration   // first delete sent to last upload.deleted delivery received
	allWindow      time.Duration   // first delete sent to the last delivery received, of either event
	delivered      int             // events delivered (either type, each once)
	duplicatePurge int
	duplicateDeliv int
	missingDeliv   int
	left           instanceLeft
}

type instanceLeft struct{ uploads, objects, purges, deliveries int }

func runInstances(ctx context.Context, o options, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "uploads-bench-instances-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cleanups []func()
	defer runCleanups(&cleanups)
	names := make([]string, len(o.instances))
	for i, n := range o.instances {
		names[i] = fmt.Sprintf("instances%d", n)
	}
	target, err := startS3(ctx, o, dir, names, &cleanups)
	if err != nil {
		return err
	}
	bin, err := buildService(ctx, dir)
	if err != nil {
		return err
	}
	db := "one PostgreSQL database (a schema per N)"
	if o.database == "sqlite" {
		db = "its own SQLite file"
	}
	fmt.Fprintf(stdout, "instances: separate processes of the service on %s, S3 %s;\n", db, target.label)
	fmt.Fprintf(stdout, "%d deletes per N (REST and GraphQL alternating, spread in turn over the instances), %d callers, %d users with one webhook endpoint each\n\n",
		o.requests, slices.Max(o.callers), o.users)
	var results []instanceResult
	for i, n := range o.instances {
		r, err := runInstanceCount(ctx, o, dir, bin, target, target.buckets[names[i]], n)
		if err != nil {
			return fmt.Errorf("%d instances: %w", n, err)
		}
		results = append(results, r)
	}
	return printInstances(stdout, o, results)
}

// buildService compiles the service (this module's main package).
func buildService(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "uploads")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/safedelete/uploads")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// instanceSchema returns the URL of a fresh schema on -database (or
// TEST_DATABASE_URL) and a function that drops it; with -database sqlite,
// that of a SQLite file in dir, for one instance.
func instanceSchema(o options, dir string) (string, func(), error) {
	if o.database == "sqlite" {
		return database.SQLiteURL(filepath.Join(dir, "uploads.db")), func() {}, nil
	}
	base := o.database
	if base == "" {
		base = os.Getenv("TEST_DATABASE_URL")
	}
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return "", nil, errors.New("-instances needs -database postgres://… (or TEST_DATABASE_URL), which the instances share, or -database sqlite for one instance")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	schema := "bench_" + strings.ToLower(ids.New("")[:12])
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		if db, err := sql.Open("pgx", base); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// instance is one running process of the service.
type instance struct {
	cmd     *exec.Cmd
	baseURL string
	done    chan error
}

func startInstance(ctx context.Context, bin, dir string, env []string) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "ADDR="+addr, "DATA_DIR="+filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = io.Discard, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	in := &instance{cmd: cmd, baseURL: "http://" + addr, done: make(chan error, 1)}
	go func() { in.done <- cmd.Wait(); logFile.Close() }()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-in.done:
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("instance exited: %v\n%s", err, log)
		case <-ctx.Done():
			in.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if res, err := http.Get(in.baseURL + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return in, nil
			}
		}
	}
	in.stop()
	return nil, fmt.Errorf("instance did not answer /healthz; see %s", logFile.Name())
}

func (in *instance) stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(30 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// runInstanceCount measures n instances.
func runInstanceCount(ctx context.Context, o options, dir, bin string, target *s3Target, bucket string, n int) (instanceResult, error) {
	r := instanceResult{instances: n}
	runDir := filepath.Join(dir, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return r, err
	}
	dbURL, dropSchema, err := instanceSchema(o, runDir)
	if err != nil {
		return r, err
	}
	defer dropSchema()
	access, secret := "", ""
	if v, err := target.creds.Retrieve(ctx); err == nil {
		access, secret = v.AccessKeyID, v.SecretAccessKey
	}
	env := []string{
		"DATABASE_URL=" + dbURL,
		"S3_BUCKET=" + bucket, "S3_ENDPOINT=" + target.endpoint, "S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_EC2_METADATA_DISABLED=true",
		"RATE_LIMIT=0", "LOG_LEVEL=" + o.logLevel,
		"WEBHOOK_ALLOW_HTTP=true", "WEBHOOK_ALLOW_PRIVATE_NETWORKS=true",
		// Every instance needs the same keys.
		"WEBHOOK_KEY_FILE=" + filepath.Join(runDir, "webhook.key"),
		"RECEIPT_KEY_FILE=" + filepath.Join(runDir, "receipt-keys.json"),
	}
	var instances []*instance
	defer func() {
		for _, in := range instances {
			in.stop()
		}
	}()
	for i := range n { // one after the other: the first start creates the schema
		in, err := startInstance(ctx, bin, filepath.Join(runDir, fmt.Sprint(i)), env)
		if err != nil {
			return r, err
		}
		instances = append(instances, in)
	}
	client, err := database.Open(ctx, dbURL)
	if err != nil {
		return r, err
	}
	defer client.Close()
	rc := newHookReceiver()
	defer rc.close()
	users, uploads, err := seedInstances(ctx, o, client, target, bucket, instances[0], rc.url)
	if err != nil {
		return r, fmt.Errorf("seed: %w", err)
	}

	sides := make([]*side, n)
	for i, in := range instances {
		sides[i] = &side{name: fmt.Sprint(i), baseURL: in.baseURL, users: users}
	}
	calls := make([]call, len(uploads))
	for i, u := range uploads {
		s := sides[i%n]
		if i%2 == 0 {
			calls[i] = s.restCall("X-Api-Key", u.owner.key, u.id, http.StatusOK, `{"message":"Upload `+u.id+` deleted successfully"}`)
		} else {
			calls[i] = s.graphqlCall(u, `{"query":"mutation { deleteUpload(id: \"`+u.id+`\") { deletedUploadId message } }"}`)
		}
	}
	cpuBefore := make([]time.Duration, n)
	for i, in := range instances {
		cpuBefore[i] = processCPU(in.cmd)
	}
	began := time.Now()
	r.deletes = driveCalls(ctx, newClient(slices.Max(o.callers)), calls, slices.Max(o.callers))
	if r.deletes.firstErr != nil {
		return r, fmt.Errorf("%d answers broke the contract, the first: %w", r.deletes.errors, r.deletes.firstErr)
	}
	// The purges and deliveries the deletes caused, until none is pending.
	drainEnd := time.Now().Add(o.drain)
	for time.Now().Before(drainEnd) && ctx.Err() == nil {
		if rc.complete(uploads) && pendingWork(ctx, client) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, in := range instances {
		r.cpu = append(r.cpu, processCPU(in.cmd)-cpuBefore[i])
	}
	r.purgeLag, r.webhookLag, r.deliveryWindow, r.duplicateDeliv, r.missingDeliv = rc.figures(uploads, began)
	r.delivered, r.allWindow = rc.arrivals(began)
	if r.duplicatePurge, err = duplicatePurges(ctx, client); err != nil {
		return r, err
	}
	r.left, err = countLeft(ctx, client, target, bucket)
	return r, err
}

// seedInstances creates the users (an API key each, and one webhook
// endpoint to hook, created over GraphQL as a user would), and -n uploads
// with their objects, owned in turn.
func seedInstances(ctx context.Context, o options, client *ent.Client, target *s3Target, bucket string, first *instance, hook string) ([]user, []seededUpload, error) {
	users := make([]user, o.users)
	for i := range users {
		secret, prefix, digest := apikey.Generate()
		users[i] = user{id: ids.NewUser(), key: secret}
		if err := client.User.Create().SetID(users[i].id).SetEmail(users[i].id + "@bench.invalid").Exec(ctx); err != nil {
			return nil, nil, err
		}
		if err := client.APIKey.Create().SetID(ids.NewAPIKey()).SetOwnerID(users[i].id).SetPrefix(prefix).SetDigest(digest).Exec(ctx); err != nil {
			return nil, nil, err
		}
		if err := createEndpoint(ctx, first.baseURL, users[i].key, hook); err != nil {
			return nil, nil, err
		}
	}
	uploads := make([]seededUpload, o.requests)
	creates := make([]*ent.UploadCreate, len(uploads))
	for i := range uploads {
		u := seededUpload{id: ids.NewUpload(), owner: users[i%len(users)]}
		uploads[i] = u
		creates[i] = client.Upload.Create().SetID(u.id).SetOwnerID(u.owner.id).
			SetFilename("bench.txt").SetContentType("text/plain").SetSize(int64(len(objectBody(u)))).
			SetStatus(upload.StatusCOMPLETED).SetBucket(bucket).SetObjectKey(objectKey(u)).SetMultipartUploadID("")
	}
	for chunk := range slices.Chunk(creates, 500) {
		if err := client.Upload.CreateBulk(chunk...).Exec(ctx); err != nil {
			return nil, nil, err
		}
	}
	return users, uploads, putObjects(ctx, target.client, bucket, uploads)
}

func createEndpoint(ctx context.Context, baseURL, key, hook string) error {
	body := fmt.Sprintf(`{"query":"mutation { createWebhookEndpoint(url: %q, events: [DELETED, PURGED]) { secret } }"}`, hook)
	body = strings.ReplaceAll(body, `"`+hook+`"`, `\"`+hook+`\"`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/graphql", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), "whsec_") {
		return fmt.Errorf("createWebhookEndpoint: %d %s", res.StatusCode, b)
	}
	return nil
}

// pendingWork counts the purges and deliveries not done yet.
func pendingWork(ctx context.Context, client *ent.Client) int {
	purges, err1 := client.ObjectPurge.Query().Count(ctx)
	deliveries, err2 := client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).Count(ctx)
	if err1 != nil || err2 != nil {
		return -1
	}
	return purges + deliveries
}

// duplicatePurges counts the uploads with more than one PURGED audit event.
func duplicatePurges(ctx context.Context, client *ent.Client) (int, error) {
	var rows []struct {
		UploadID string `json:"upload_id"`
		Count    int    `json:"count"`
	}
	err := client.AuditEvent.Query().Where(auditevent.KindEQ(auditevent.KindPURGED)).
		GroupBy(auditevent.FieldUploadID).Aggregate(ent.Count()).Scan(ctx, &rows)
	n := 0
	for _, r := range rows {
		if r.Count > 1 {
			n++
		}
	}
	return n, err
}

func countLeft(ctx context.Context, client *ent.Client, target *s3Target, bucket string) (instanceLeft, error) {
	var l instanceLeft
	var err error
	if l.uploads, err = client.Upload.Query().Count(ctx); err != nil {
		return l, err
	}
	if l.purges, err = client.ObjectPurge.Query().Count(ctx); err != nil {
		return l, err
	}
	if l.deliveries, err = client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).Count(ctx); err != nil {
		return l, err
	}
	l.objects, err = countObjects(ctx, target.client, bucket)
	return l, err
}

// hookReceiver is every instance's webhook endpoint: it answers 204 at
// once and keeps, per upload and event type, the webhook-ids accepted
// (a second one is a duplicate delivery, and so is the same id twice),
// the event's timestamp and when the first arrived.
type hookReceiver struct {
	srv *httptest.Server
	url string

	mu       sync.Mutex
	ids      map[string]int          // webhook-id -> requests
	events   map[[2]string][]string  // (upload, type) -> webhook-ids
	eventAt  map[[2]string]time.Time // (upload, type) -> the payload's timestamp
	arrived  map[[2]string]time.Time // (upload, type) -> first arrival
	firstErr error
}

func newHookReceiver() *hookReceiver {
	rc := &hookReceiver{ids: map[string]int{}, events: map[[2]string][]string{},
		eventAt: map[[2]string]time.Time{}, arrived: map[[2]string]time.Time{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.url = rc.srv.URL + "/hook"
	return rc
}

func (rc *hookReceiver) close() { rc.srv.Close() }

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var p struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	err := json.NewDecoder(r.Body).Decode(&p)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil || id == "" {
		if rc.firstErr == nil {
			rc.firstErr = fmt.Errorf("a delivery without a webhook-id or a JSON body: %v", err)
		}
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.ids[id]++
	k := [2]string{p.Data.ID, p.Type}
	if rc.ids[id] == 1 {
		rc.events[k] = append(rc.events[k], id)
	}
	if _, ok := rc.arrived[k]; !ok {
		rc.arrived[k], rc.eventAt[k] = now, p.Timestamp
	}
	w.WriteHeader(http.StatusNoContent)
}

const (
	deletedEvent = "upload.deleted"
	purgedEvent  = "upload.purged"
)

// complete reports whether both events of every upload arrived.
func (rc *hookReceiver) complete(uploads []seededUpload) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, u := range uploads {
		for _, t := range []string{deletedEvent, purgedEvent} {
			if _, ok := rc.arrived[[2]string{u.id, t}]; !ok {
				return false
			}
		}
	}
	return true
}

// figures are the lags, the window of the deleted events' deliveries, and
// the duplicate and missing deliveries.
func (rc *hookReceiver) figures(uploads []seededUpload, began time.Time) (purgeLag, webhookLag []time.Duration, window time.Duration, duplicates, missing int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.ids {
		if n > 1 {
			duplicates++
		}
	}
	type lag struct {
		at    time.Time
		delay time.Duration
	}
	var lags []lag
	for _, u := range uploads {
		deleted, purged := [2]string{u.id, deletedEvent}, [2]string{u.id, purgedEvent}
		for _, k := range [][2]string{deleted, purged} {
			switch got := len(rc.events[k]); {
			case got == 0:
				missing++
			case got > 1:
				duplicates += got - 1 // the same event under two webhook-ids
			}
		}
		if at, ok := rc.arrived[deleted]; ok {
			lags = append(lags, lag{rc.eventAt[deleted], at.Sub(rc.eventAt[deleted])})
			window = max(window, at.Sub(began))
		}
		if _, ok := rc.arrived[purged]; ok && !rc.eventAt[deleted].IsZero() {
			purgeLag = append(purgeLag, rc.eventAt[purged].Sub(rc.eventAt[deleted]))
		}
	}
	slices.SortFunc(lags, func(a, b lag) int { return a.at.Compare(b.at) })
	for _, l := range lags {
		webhookLag = append(webhookLag, l.delay)
	}
	return purgeLag, webhookLag, window, duplicates, missing
}

// lagTrend returns the median webhook lag of the first and of the last
// tenth of the deletes (lags in the order of the deletes): when deliveries
// keep pace with deletes the two are alike; when they fall behind, the
// lag grows with every delete, and the last tenth's is the larger by the
// backlog built meanwhile.
func lagTrend(lags []time.Duration) (first, last time.Duration) {
	tenth := max(len(lags)/10, 1)
	if len(lags) < tenth {
		return 0, 0
	}
	return percentile(lags[:tenth], 50), percentile(lags[len(lags)-tenth:], 50)
}

// arrivals are the events that arrived, and the time from began to the
// last first arrival.
func (rc *hookReceiver) arrivals(began time.Time) (int, time.Duration) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var last time.Duration
	for _, at := range rc.arrived {
		last = max(last, at.Sub(began))
	}
	return len(rc.arrived), last
}

func printInstances(w io.Writer, o options, results []instanceResult) error {
	fmt.Fprintf(w, "%-9s %9s %8s %8s %-22s %10s %10s %10s %10s %9s\n",
		"instances", "deletes/s", "p50", "p99", "cpu-s/1k deletes each", "purge p50", "purge p99", "hook p50", "hook p99", "hook pace")
	var broken []string
	for _, r := range results {
		st := r.deletes.stats()
		var cpu []string
		for _, c := range r.cpu {
			cpu = append(cpu, fmt.Sprintf("%.2f", c.Seconds()/(float64(r.deletes.requests)/1000)))
		}
		// The pace: how long the deletes took ÷ how long until the last
		// upload.deleted delivery arrived (from the first delete). 1.00
		// means the deliveries kept up; below, a backlog built up.
		pace := r.deletes.elapsed.Seconds() / max(r.deliveryWindow.Seconds(), r.deletes.elapsed.Seconds())
		fmt.Fprintf(w, "%-9d %9.0f %8s %8s %-22s %10s %10s %10s %10s %8.2fx\n",
			r.instances, st.rps, ms(st.p50), ms(st.p99), strings.Join(cpu, ","),
			ms(percentile(r.purgeLag, 50)), ms(percentile(r.purgeLag, 99)),
			ms(percentile(r.webhookLag, 50)), ms(percentile(r.webhookLag, 99)), pace)
		deliveriesPerSecond := float64(len(r.webhookLag)) / max(r.deliveryWindow.Seconds(), 1e-9)
		first, last := lagTrend(r.webhookLag)
		fmt.Fprintf(w, "          deliveries/s (both events) %.0f; upload.deleted deliveries/s %.0f ÷ deletes/s %.0f = %.2f; hook lag p50, first tenth of the deletes %s, last tenth %s; checks: duplicate purges %d, duplicate deliveries %d, missing deliveries %d, left: uploads %d, objects %d, purges %d, deliveries %d\n",
			float64(r.delivered)/max(r.allWindow.Seconds(), 1e-9), deliveriesPerSecond, st.rps, deliveriesPerSecond/st.rps, ms(first), ms(last),
			r.duplicatePurge, r.duplicateDeliv, r.missingDeliv, r.left.uploads, r.left.objects, r.left.purges, r.left.deliveries)
		if r.duplicatePurge+r.duplicateDeliv+r.missingDeliv+r.left.uploads+r.left.objects+r.left.purges+r.left.deliveries > 0 {
			broken = append(broken, fmt.Sprint(r.instances))
		}
	}
	fmt.Fprintln(w, "\ncpu-s/1k: each instance's CPU time (user+system, /proc/PID/stat) from the first delete until the purges and deliveries drained, per 1,000 deletes of the whole run.")
	fmt.Fprintln(w, "purge: upload.deleted's timestamp (in the delete's transaction) to upload.purged's (object gone); hook: upload.deleted's timestamp to its arrival at the receiver.")
	fmt.Fprintln(w, "hook pace and upload.deleted ÷ deletes stay under 1.00 by the last deliveries' lag; the lag of the first and last tenth of the deletes tells whether deliveries kept pace (alike) or a backlog grew (the last larger).")
	if len(broken) > 0 {
		return fmt.Errorf("checks failed with %s instances", strings.Join(broken, ","))
	}
	return nil
}

// processCPU is the user and system CPU time the running process has
// used, from /proc/PID/stat (Linux; 0 elsewhere), in clock ticks of 1/100 s.
func processCPU(cmd *exec.Cmd) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name, which is in parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
