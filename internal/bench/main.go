// Command bench measures the request hot path of the service against two
// hand-written handlers of the same REST contract, side by side in one run,
// so that anyone can reproduce the ratios:
//
//	go run ./internal/bench                                 # embedded S3 (internal/embeds3)
//	go run ./internal/bench -s3-endpoint http://127.0.0.1:7070 \
//	    -s3-access-key KEY -s3-secret-key SECRET            # e.g. versitygw, as .ci/run starts it
//
// It starts, in this process, the real service exactly as server.go does
// (app.New from config.Defaults() with a temporary DATA_DIR, served by
// httpserver.NewServer through httpserver.Listener on loopback, with its
// background purger) and two baselines written with nothing but net/http,
// database/sql (the same go-sqlite3 DSN, each its own SQLite file migrated
// with the service's migrations) and the S3 SDK (handwritten.go):
//
//	minimal    the contract's work only: a plain read of the upload (a 404
//	           takes no write lock), one transaction that deletes the record
//	           and writes its purge note, DeleteObject inline, the answer; one
//	           goroutine removes the notes of finished objects in batches,
//	           off the request path, as the service's purger does. What the
//	           service's features cost is its distance from this one.
//	same-work  also what the service's delete writes: the trash entry and the
//	           "deleted" audit event (after a read of the owner's webhook
//	           endpoints) in the record's transaction, and once the object is
//	           gone, a second one removing the note and the entry with the
//	           "purged" event. What the service's code costs over doing the
//	           same work by hand is its distance from this one.
//
// Both baselines' write transactions take turns on one connection, as the
// service's take turns (-handwritten-busy-wait makes them wait in SQLite's
// busy handler instead, as plain database/sql code does: at 64 callers the
// same-work one's second transaction then outwaits its 5 s and leaves
// notes, which fails the checks). All three sides
// use the same S3 server, one bucket each. Users, keys, upload records and
// objects are seeded directly, not over HTTP. The same load generator then
// drives the three sides at each count of -c concurrent callers (a list,
// 16,64 by default; the requests are sent in turn by as many users as the
// largest count, with an API key each), in -rounds rounds in which the order
// of the sides changes (each of its orders in turn) and the scenarios take
// turns (each round beginning with the next), after a warm-up:
//
//	rest-delete   DELETE /delete-upload-api, 200: service vs each baseline
//	rest-404      the same with an id of nothing or of another user's upload
//	              (both baselines answer it alike: their gap is the noise)
//	graphql       mutation { deleteUpload(id: "…") { deletedUploadId message } }
//	              on the service vs each baseline's REST delete
//	graphql-vars  (not run by default) the same with the id in $id
//
// Two more (not run by default) price an access token on the hot path: both
// of their sides are the service, and the comparison is one credential
// against the other, alternating per round in the same way:
//
//	rest-delete-bearer        DELETE /delete-upload-api, 200, with
//	                          Authorization: Bearer <RS256 access token>,
//	                          vs the same delete with the caller's API key
//	rest-delete-bearer-es256  the same with an ES256 token
//
// When one of them is chosen, the service is started with AUTH_ISSUER set to
// an in-process issuer (internal/oidc/oidctest on loopback http, publishing
// an RS256 and an ES256 key) and AUTH_AUDIENCE; each caller's user gets an
// identity of that issuer (signin.Link) and one token of it per key, valid
// for a day, which it sends on every request, as a frontend does: after
// its first request, the service checks the token's claims and key and
// looks its identity up, but remembers its signature (internal/oidc).
// -token-per-request gives every request a token never sent before (signed
// while seeding), so that each one pays the full check, signature included.
// Otherwise the service runs without AUTH_ISSUER, as before. The raw cost of
// the check alone is BenchmarkVerify:
//
//	go run ./internal/bench -scenarios rest-delete,rest-delete-bearer
//	go run ./internal/bench -scenarios rest-delete-bearer,rest-delete-bearer-es256 -token-per-request
//	go test -run '^$' -bench Verify -benchmem ./internal/oidc
//
// One more (not run by default) prices the Idempotency-Key header in the
// same way, both sides the service, alternating per round:
//
//	rest-delete-key  DELETE /delete-upload-api, 200, with an Idempotency-Key
//	                 never sent before (the key is taken, the delete marks
//	                 it in its own transaction, the answer is stored,
//	                 sealed), vs the same delete without one
//
//	go run ./internal/bench -scenarios rest-delete-key
//
// It prints, per count of callers, req/s, p50 and p99 of each side and the
// service's ratios to each baseline (for the bearer scenarios, token/key;
// for rest-delete-key, key/no-key),
// then the four req/s ratios that sum the cost up (REST/minimal,
// REST/same-work, GraphQL/minimal, GraphQL/same-work), then checks that
// every side left no purge note and only the objects it should. Every
// response is checked against the contract. Ratios, not absolute figures,
// are the result: the sides share the machine.
//
// The service logs JSON at -log-level (production's info by default) to
// io.Discard, and runs every middleware it runs in production: request id
// and request log, Prometheus metrics, CORS, authentication, and the rate
// limiter (with -rate-limit requests per minute per key, high enough never
// to refuse; 0 removes it, as RATE_LIMIT=0 does).
//
// -cpuprofile FILE writes a CPU profile of the warm-ups and measured rounds
// (not of the seeding), with the samples of every request labelled side
// (service, minimal, same-work), scenario, run (side/scenario; warm-ups are
// scenario-warmup), credential (key, bearer: what tells the two halves
// of a bearer scenario apart) and idempotency (key, none: the same for
// rest-delete-key). Percentages are of the whole profile, whose samples
// include the load generator's:
//
//	go run ./internal/bench -scenarios rest-404 -cpuprofile 404.prof
//	go tool pprof -top -cum -tagfocus side=service 404.prof
//	go tool pprof -top -cum -tagfocus side=minimal 404.prof
//	go tool pprof -top -cum -tagfocus run=service/graphql all.prof
//	go tool pprof -top -cum -tagfocus 'scenario:rest-delete-bearer$,credential:bearer' bearer.prof
//	go tool pprof -top -cum -tagfocus 'scenario:rest-delete-key$,idempotency:key' key.prof
//
// -otlp-endpoint URL adds a fourth side to the scenarios that compare the
// service with the baselines: service-traced, the service configured as
// the service side is, with tracing on as OTEL_EXPORTER_OTLP_ENDPOINT=URL
// turns it on (internal/tracing.Start: the default sampler samples every
// request, the batch span processor sends the spans to URL; the other
// OTEL_* variables of the environment apply). Each such scenario then
// prints service-traced's figures and traced/untraced (its req/s, p50 and
// p99 over the service's), a table of the req/s ratios, and how many spans
// were made per request and the exporter's errors. Start a collector first,
// e.g. Jaeger as .ci/run builds it (OTLP on 4317 and 4318). With four sides,
// a multiple of 4 rounds puts each in each place as often. The profile's
// label side=service matches service-traced too: focus on the untraced one
// with 'side=^service$'. The traced side's samples include the batch span
// processor's, which encodes and sends the spans (scenario export):
//
//	go run ./internal/bench -scenarios rest-delete,graphql -rounds 8 -otlp-endpoint http://127.0.0.1:4318 -cpuprofile traced.prof
//	go tool pprof -top -cum -tagfocus side=service-traced traced.prof
//
// -handwritten-prepared makes the baselines run their two reads (the key's
// owner, the upload) as prepared statements, as the service runs its own:
// without it, the baselines have SQLite parse and plan both on every
// request, which the service does not.
//
// -handwritten-lock-first makes the baselines look the upload up only
// inside their write transaction, as the service does, to measure what that
// costs (the minimal one's lookup is then its DELETE … RETURNING).
//
// -erase measures something else instead: how fast one user's uploads are
// erased end to end (deleteUploads pages, deleteUploadsWhere loops, users
// delete), beside the S3 server's own DeleteObjects rate; see erase.go.
//
//	go run ./internal/bench -erase [-uploads 100000] [-ways delete-uploads,...] [-s3-endpoint ...]
//
// -instances measures how the service scales out instead: for each count N
// of the list, N processes of the service (go build of this module) on one
// PostgreSQL database (-database, or TEST_DATABASE_URL; a fresh schema per
// N) and one S3 server share -n REST and GraphQL deletes from the largest
// -c callers, and it prints deletes/s, p50/p99, each instance's CPU-seconds
// per 1,000 deletes, purge lag and webhook lag (p50/p99), how the webhook
// deliveries kept pace with the deletes (one endpoint per user, a local
// receiver), and checks that no upload was purged twice, no event was
// delivered twice or never, and nothing was left; see instances.go.
//
//	go run ./internal/bench -instances 1,2,3 -database postgres://… -s3-endpoint … -s3-access-key … -s3-secret-key …
//	go run ./internal/bench -instances 1,2 -n 500     # TEST_DATABASE_URL, the embedded S3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/safedelete/uploads/internal/ids"
)

// options are the command's flags.
type options struct {
	s3Endpoint, s3AccessKey, s3SecretKey string
	requests, rounds                     int
	callers                              []int // -c: each count of concurrent callers measured
	scenarios                            string
	cpuprofile                           string
	logLevel                             string
	rateLimit                            int
	sqliteSync                           string
	lockFirst                            bool
	busyWait                             bool
	prepared                             bool
	tokenPerRequest                      bool
	erase                                bool          // -erase: the erase benchmark (erase.go) instead
	uploads                              int           // -uploads, for -erase
	ways                                 string        // -ways, for -erase
	instances                            []int         // -instances: each count of service processes measured (instances.go)
	database                             string        // -database, for -instances
	users                                int           // -users, for -instances
	drain                                time.Duration // -drain, for -instances
	otlpEndpoint                         string        // -otlp-endpoint: adds the service-traced side (traced.go)
}

// scenario is one comparison: what the service is sent, and what the
// hand-written baselines are sent to compare it with, or, when self is set,
// what the service itself is sent to compare it with (one credential
// against another on the same service).
type scenario struct {
	name, title       string
	service, baseline kind
	self              bool
}

var scenarios = []scenario{
	{"rest-delete", "REST delete, 200", restDelete, restDelete, false},
	{"rest-404", "REST 404 (auth + lookup)", rest404, rest404, false},
	{"graphql", "GraphQL deleteUpload vs REST", graphqlDelete, restDelete, false},
	{"graphql-vars", "GraphQL with $id vs REST", graphqlDeleteVars, restDelete, false},
	{"rest-delete-bearer", "REST delete, RS256 token", restDeleteRS256, restDelete, true},
	{"rest-delete-bearer-es256", "REST delete, ES256 token", restDeleteES256, restDelete, true},
	{"rest-delete-key", "REST delete, Idempotency-Key", restDeleteKeyed, restDelete, true},
}

// sides are the sides sc drives: the service, then the hand-written
// baselines and the traced service if there is one, or (self) the service
// again.
func (sc scenario) sides(svc *side, baselines []*side, traced *side) []*side {
	if sc.self {
		return []*side{svc, svc}
	}
	sides := append([]*side{svc}, baselines...)
	if traced != nil {
		sides = append(sides, traced)
	}
	return sides
}

// kind is what sc sends s, the i-th of its sides.
func (sc scenario) kind(i int, s *side) kind {
	if i == 0 || s.name == serviceTracedSide {
		return sc.service
	}
	return sc.baseline
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, []scenario, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3 server URL (path-style); default: the embedded S3 server")
	fs.StringVar(&o.s3AccessKey, "s3-access-key", "", "S3 access key for -s3-endpoint")
	fs.StringVar(&o.s3SecretKey, "s3-secret-key", "", "S3 secret key for -s3-endpoint")
	fs.IntVar(&o.requests, "n", 2000, "measured requests per side per delete scenario (rest-404 sends 5x as many)")
	callers := fs.String("c", "16,64", "comma-separated counts of concurrent callers, each measured in turn")
	fs.IntVar(&o.rounds, "rounds", 12, "rounds per scenario and caller count; the order of the sides changes each round")
	fs.StringVar(&o.scenarios, "scenarios", "rest-delete,rest-404,graphql", "comma-separated: rest-delete, rest-404, graphql, graphql-vars, rest-delete-bearer, rest-delete-bearer-es256, rest-delete-key")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured rounds, labelled side=service|minimal|same-work")
	fs.StringVar(&o.logLevel, "log-level", "info", "the service's LOG_LEVEL (its JSON logs go to io.Discard)")
	fs.IntVar(&o.rateLimit, "rate-limit", 1_000_000_000, "the service's RATE_LIMIT per minute per key; 0 removes the limiter")
	fs.StringVar(&o.sqliteSync, "sqlite-sync", "", "PRAGMA synchronous for every side (e.g. FULL); default: what the service uses")
	fs.BoolVar(&o.prepared, "handwritten-prepared", false, "the hand-written baselines run their two reads as prepared statements, as the service does (to compare like with like)")
	fs.BoolVar(&o.lockFirst, "handwritten-lock-first", false, "the hand-written baselines look the upload up only inside their write transaction, as the service does (to measure that cost)")
	fs.BoolVar(&o.busyWait, "handwritten-busy-wait", false, "the hand-written baselines' transactions wait for SQLite's lock in its busy handler, as plain database/sql code does, instead of taking turns on one connection (the baseline before issue 22)")
	fs.BoolVar(&o.tokenPerRequest, "token-per-request", false, "bearer scenarios: every request carries a token never sent before (the full check each time), not its caller's one token")
	fs.BoolVar(&o.erase, "erase", false, "erase one user's uploads six ways and compare with DeleteObjects alone (see erase.go)")
	fs.IntVar(&o.uploads, "uploads", 0, fmt.Sprintf("-erase: uploads per way (default %d with -s3-endpoint, %d on the embedded S3)", eraseUploads, eraseUploadsEmbedded))
	fs.StringVar(&o.ways, "ways", eraseWayNames(), "-erase: comma-separated ways to erase")
	instances := fs.String("instances", "", "comma-separated counts of service instances (processes) on one PostgreSQL database, each measured in turn (see instances.go); instead of the side-by-side scenarios")
	fs.DurationVar(&o.drain, "drain", 2*time.Minute, "-instances: how long to wait, after the deletes, for their purges and deliveries (what is pending then counts as left)")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "an OTLP collector (e.g. http://127.0.0.1:4318): adds the side service-traced, the service with tracing on sending there, and its req/s over the service's")
	fs.IntVar(&o.users, "users", defaultInstanceUsers, "-instances: users the deletes are spread over, each with one webhook endpoint (1: one owner's endpoint gets every event)")
	fs.StringVar(&o.database, "database", "", "-instances: the PostgreSQL database (postgres://…) the instances share, a schema per count, or sqlite for one instance on its own SQLite file; default: TEST_DATABASE_URL")
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	if *instances != "" {
		for _, c := range strings.Split(*instances, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 {
				return o, nil, fmt.Errorf("-instances: want counts >= 1, got %q", c)
			}
			o.instances = append(o.instances, n)
		}
	}
	for _, c := range strings.Split(*callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return o, nil, fmt.Errorf("-c: want counts >= 1, got %q", c)
		}
		o.callers = append(o.callers, n)
	}
	if o.otlpEndpoint != "" && (o.erase || len(o.instances) > 0) {
		return o, nil, errors.New("-otlp-endpoint: only for the side-by-side scenarios, not -erase or -instances")
	}
	if o.erase {
		return o, nil, o.eraseDefaults(fs)
	}
	if len(o.instances) > 0 {
		if o.requests < 1 || o.users < 1 {
			return o, nil, errors.New("-instances: want -n >= 1 and -users >= 1")
		}
		if o.database == "sqlite" && slices.Max(o.instances) > 1 {
			return o, nil, errors.New("-database sqlite: one instance only (-instances 1); instances share PostgreSQL")
		}
		return o, nil, nil
	}
	if o.requests < o.rounds || o.rounds < 1 {
		return o, nil, errors.New("want -n >= -rounds >= 1")
	}
	var chosen []scenario
	for _, name := range strings.Split(o.scenarios, ",") {
		i := indexOf(strings.TrimSpace(name))
		if i < 0 {
			return o, nil, fmt.Errorf("unknown scenario %q", name)
		}
		chosen = append(chosen, scenarios[i])
	}
	return o, chosen, nil
}

func indexOf(name string) int {
	for i, s := range scenarios {
		if s.name == name {
			return i
		}
	}
	return -1
}

// measured is how many requests of kind k each side gets: -n for deletes,
// which each consume a seeded upload, and five times more for the 404 path,
// which is that much faster and costs no seeding.
func (o options) measured(k kind) int {
	if k.consumes() {
		return o.requests
	}
	return 5 * o.requests
}

// warmups is how many requests each side gets before a scenario is measured.
func (o options) warmups() int { return min(200, o.requests/5) }

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, chosen, err := parseFlags(args)
	if err != nil {
		return err
	}
	if o.erase {
		return runErase(ctx, o, stdout)
	}
	if len(o.instances) > 0 {
		return runInstances(ctx, o, stdout)
	}
	dir, err := os.MkdirTemp("", "uploads-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cleanups []func()
	defer runCleanups(&cleanups)
	names := []string{serviceSide, minimalSide, sameWorkSide}
	if o.otlpEndpoint != "" {
		names = append(names, serviceTracedSide)
	}
	target, err := startS3(ctx, o, dir, names, &cleanups)
	if err != nil {
		return err
	}
	tokens, err := startIssuer(chosen, &cleanups)
	if err != nil {
		return err
	}
	svc, svcApp, err := startService(ctx, o, filepath.Join(dir, serviceSide), target.buckets[serviceSide], target, tokens, &cleanups)
	if err != nil {
		return err
	}
	var traced *side
	var tr *tracer
	if o.otlpEndpoint != "" {
		if tr, err = startTracer(ctx, o.otlpEndpoint, &cleanups); err != nil {
			return err
		}
		traced, _, err = startServiceAs(ctx, o, serviceTracedSide, filepath.Join(dir, serviceTracedSide),
			target.buckets[serviceTracedSide], target, tokens, tr.provider, &cleanups)
		if err != nil {
			return err
		}
	}
	var baselines []*side
	for _, name := range []string{minimalSide, sameWorkSide} {
		s, err := startHandwritten(ctx, o, name, filepath.Join(dir, name), target, &cleanups)
		if err != nil {
			return err
		}
		baselines = append(baselines, s)
	}
	// The service's callers get identities and tokens when a scenario sends
	// tokens.
	var svcIdentities *identities
	if tokens != nil {
		svcIdentities = &identities{tokens, svcApp.Client}
	}
	all := append([]*side{svc}, baselines...)
	if traced != nil {
		all = append(all, traced)
	}
	for _, s := range all {
		var identify *identities
		if s == svc {
			identify = svcIdentities
		}
		if err := seed(ctx, o, chosen, s, target, identify); err != nil {
			return fmt.Errorf("seed %s: %w", s.name, err)
		}
	}
	if err := printSetup(ctx, stdout, o, target, tokens, all); err != nil {
		return err
	}
	if tr != nil {
		fmt.Fprintln(stdout, tracedSetup(tr))
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	results := measure(ctx, o, chosen, svc, baselines, traced)
	printResults(stdout, o, results)
	if err := printChecks(ctx, stdout, target, all); err != nil {
		return err
	}
	printTraced(stdout, o, tr, results)
	for _, m := range results {
		for _, r := range m.results {
			if r.errors > 0 {
				return errors.New("some answers broke the contract (see the errors column)")
			}
		}
	}
	return nil
}

// seed gives a side a user and key per caller of the largest -c (with
// identify, their identities and tokens too), another user with uploads
// (404 targets), ids of nothing, and an upload per delete it will be sent
// (with -token-per-request, each with a token of its own).
func seed(ctx context.Context, o options, chosen []scenario, s *side, t *s3Target, identify *identities) error {
	callers := slices.Max(o.callers)
	users, err := seedUsers(ctx, s.db, callers+1)
	if err != nil {
		return err
	}
	s.users = users[:callers]
	if identify != nil {
		if err := identify.tokens.issue(ctx, identify.client, s.users); err != nil {
			return err
		}
	}
	bucket := t.buckets[s.name]
	if s.foreign, err = seedUploads(ctx, s.db, t.client, bucket, users[callers:], 64); err != nil {
		return err
	}
	for range 256 {
		s.missing = append(s.missing, ids.NewUpload())
	}
	for _, sc := range chosen {
		var kinds []kind
		switch {
		case s.name == serviceSide && sc.self:
			kinds = []kind{sc.service, sc.baseline}
		case sc.self: // the others take no part
		case s.name == serviceSide || s.name == serviceTracedSide:
			kinds = []kind{sc.service}
		default:
			kinds = []kind{sc.baseline}
		}
		for _, k := range kinds {
			if !k.consumes() {
				continue
			}
			n := (o.requests + o.warmups()) * len(o.callers)
			if s.pools[pool(sc.name, k)], err = seedUploads(ctx, s.db, t.client, bucket, s.users, n); err != nil {
				return err
			}
			if o.tokenPerRequest && k.tokenAlg() != "" {
				if err := identify.tokens.signEach(s.pools[pool(sc.name, k)], k.tokenAlg()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// measurement is one scenario at one count of callers: a result per side,
// in sc.sides' order, and the sides' names.
type measurement struct {
	callers int
	sc      scenario
	results []result
	sides   []string
}

// measure runs each scenario at each count of callers: a warm-up of each
// scenario's sides, then rounds in which the order of the sides changes and
// the scenarios take turns, each round beginning with the next scenario.
// Every scenario is thus measured across the whole count's run, so that none
// always meets the databases as the scenarios before it left them (the
// baselines' shrink as they delete, while the service's trail grows). Run
// one after the other, the minimal handler was 2-13% faster in the second
// scenario than in the first, in every run.
func measure(ctx context.Context, o options, chosen []scenario, svc *side, baselines []*side, traced *side) []measurement {
	var measured []measurement
	for _, c := range o.callers {
		ms := make([]measurement, len(chosen))
		sides := make([][]*side, len(chosen))
		for j, sc := range chosen {
			sides[j] = sc.sides(svc, baselines, traced)
			currentScenario.Store(sc.name + "-warmup")
			for i, s := range sides[j] {
				drive(ctx, s, sc.name, sc.kind(i, s), o.warmups(), c)
			}
			ms[j] = measurement{callers: c, sc: sc, results: make([]result, len(sides[j]))}
			for _, s := range sides[j] {
				ms[j].sides = append(ms[j].sides, s.name)
			}
		}
		for round := range o.rounds {
			for k := range chosen {
				j := (round + k) % len(chosen)
				sc := chosen[j]
				currentScenario.Store(sc.name)
				total := o.measured(sc.service)
				n := total / o.rounds
				if round == o.rounds-1 {
					n = total - n*(o.rounds-1)
				}
				for _, i := range order(round, len(sides[j])) {
					ms[j].results[i].merge(drive(ctx, sides[j][i], sc.name, sc.kind(i, sides[j][i]), n, c))
				}
			}
		}
		measured = append(measured, ms...)
	}
	return measured
}

// order is the order in which round drives n sides. Each block of n
// rounds turns one order round through every place, so that by the end of
// each block every side has been in every place once (with four sides,
// -rounds 8 is balanced); the blocks take in turn each order of the sides
// after the first, so that over n! rounds every order comes once and every
// side goes before every other as often as after it.
func order(round, n int) []int {
	orders := 1 // of the sides after side 0
	left := []int{}
	for i := 1; i < n; i++ {
		left = append(left, i)
		orders *= i
	}
	k := (round / n) % orders
	base := []int{0}
	for len(left) > 0 {
		orders /= len(left) // the orders of what is left after this place
		i := k / orders
		k %= orders
		base = append(base, left[i])
		left = slices.Delete(left, i, i+1)
	}
	shift := round % n
	return append(slices.Clone(base[shift:]), base[:shift]...)
}

// runCleanups runs what a run started, in the reverse order of starting.
func runCleanups(cleanups *[]func()) {
	for i := len(*cleanups) - 1; i >= 0; i-- {
		(*cleanups)[i]()
	}
}
