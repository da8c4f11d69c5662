//go:build soak

package soak

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/safedelete/uploads/internal/testenv"
)

// deleteLog records the object DELETEs that reach S3, with their times, so
// that two purges of one object at once can be seen.
type deleteLog struct {
	mu    sync.Mutex
	spans map[string][][2]time.Time // object key -> [start, end] of each DELETE
}

func (d *deleteLog) record(key string, start, end time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.spans[key] = append(d.spans[key], [2]time.Time{start, end})
}

// counts returns how many objects were deleted more than once, how many of
// those repeats retried a DELETE already under way when the instance was
// killed (its purger died before it could record the purge done, so another
// instance had to repeat it: S3 cannot tell a purger whether a lost request
// took effect), and how many DELETEs of one object overlapped in time (two
// purgers at once, which the lease must prevent).
func (d *deleteLog) counts(killedAt time.Time) (repeated, afterKill, overlapping int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, spans := range d.spans {
		if len(spans) < 2 {
			continue
		}
		repeated++
		if spans[0][0].Before(killedAt) && spans[1][0].After(killedAt) {
			afterKill++
		}
		for i := range spans {
			for j := i + 1; j < len(spans); j++ {
				if spans[i][0].Before(spans[j][1]) && spans[j][0].Before(spans[i][1]) {
					overlapping++
				}
			}
		}
	}
	return repeated, afterKill, overlapping
}

// TestThreeInstances runs three server processes on one PostgreSQL database
// and one bucket (behind a counting proxy), spreads 10,000 deletes over them
// round-robin, and SIGKILLs one midway. Every delete must be answered
// exactly once as it should (200, or 404 only for an id whose earlier try
// died with the instance, or for a repeat), no object may be left or lost,
// and no object may be purged by two instances at once.
func TestThreeInstances(t *testing.T) {
	baseDB, endpoint := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_S3_ENDPOINT")
	if !strings.HasPrefix(baseDB, "postgres") || endpoint == "" {
		t.Fatal("needs TEST_DATABASE_URL=postgres://... and TEST_S3_ENDPOINT (see .ci/run)")
	}
	const uploads, workers, instances = 10000, 32, 3
	databaseURL := testenv.PostgresSchema(t) // a schema of its own on TEST_DATABASE_URL
	bucket := "three-" + randomHex(6)
	if err := s3Store(t, endpoint, bucket).EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}

	target, _ := url.Parse(endpoint)
	log := &deleteLog{spans: map[string][][2]time.Time{}}
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		forward.ServeHTTP(w, r)
		if r.Method == http.MethodDelete && !r.URL.Query().Has("uploadId") {
			log.record(r.URL.Path, start, time.Now())
		}
	}))
	defer proxy.Close()

	env := []string{
		"DATABASE_URL=" + databaseURL,
		"S3_BUCKET=" + bucket, "S3_ENDPOINT=" + proxy.URL, "S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + os.Getenv("TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("TEST_S3_SECRET_KEY"),
		"AWS_EC2_METADATA_DISABLED=true",
		"PURGE_POLL_INTERVAL=200ms", "RATE_LIMIT=0",
	}
	var servers []*server
	for i := range instances {
		s := newServer(t, env...)
		s.start() // one after the other: the first start creates the schema
		servers = append(servers, s)
		_ = i
	}
	_, key := servers[0].newUser("three@example.com")
	seedStart := time.Now()
	ids := uploadMany(t, servers[0].url(), key, uploads, workers)
	t.Logf("seeded %d uploads in %s", uploads, time.Since(seedStart).Round(time.Millisecond))

	var (
		next          atomic.Int64
		answered      atomic.Int64
		mu            sync.Mutex
		acked         int
		notFoundAfter int
		unexpected    []string
		killed        atomic.Bool
		killedAt      time.Time
	)
	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				unanswered := false
				for try := 0; ; try++ {
					s := servers[(i+try)%instances] // round-robin; a failed try moves on, as a load balancer would
					if killed.Load() && s == servers[1] {
						continue
					}
					status, body, err := deleteREST(s.url(), key, ids[i])
					if err != nil {
						unanswered = true
						continue
					}
					if answered.Add(1) == uploads/2 && killed.CompareAndSwap(false, true) {
						servers[1].kill()
						killedAt = time.Now() // read after wg.Wait
					}
					mu.Lock()
					switch {
					case status == 200:
						acked++
					case status == 404 && unanswered:
						notFoundAfter++
					default:
						unexpected = append(unexpected, fmt.Sprintf("%s: %d %s", ids[i], status, body))
					}
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()
	deleteTime := time.Since(began)

	// Repeats, on the surviving instances: all 404.
	repeats404 := 0
	for i := 0; i < 500; i++ {
		s := servers[[]int{0, 2}[i%2]]
		if status, _, err := deleteREST(s.url(), key, ids[i*(uploads/500)]); err == nil && status == 404 {
			repeats404++
		}
	}

	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	drainStart := time.Now()
	for count("SELECT count(*) FROM object_purges") > 0 && time.Since(drainStart) < 3*time.Minute {
		time.Sleep(200 * time.Millisecond)
	}
	drain := time.Since(drainStart)
	records := count("SELECT count(*) FROM uploads")
	pending := count("SELECT count(*) FROM object_purges")
	objects := 0
	p := s3.NewListObjectsV2Paginator(s3Store(t, endpoint, bucket).Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		objects += len(page.Contents)
	}
	repeated, afterKill, overlapping := log.counts(killedAt)
	t.Logf("FIGURE three instances: %d deletes round-robin over %d instances (PostgreSQL, S3 behind a counting proxy), "+
		"instance 2 SIGKILLed after %d answers; in %s: %d answered 200, %d 404 after a try lost with the killed instance, "+
		"%d unexpected; %d of 500 repeats 404; afterwards %d records, %d objects, %d pending purges (drained in %s); "+
		"objects deleted more than once: %d (%d of them retries of a DELETE in flight on the killed instance), "+
		"purged by two instances at once: %d",
		uploads, instances, uploads/2, deleteTime.Round(time.Millisecond), acked, notFoundAfter, len(unexpected),
		repeats404, records, objects, pending, drain.Round(time.Millisecond), repeated, afterKill, overlapping)
	if len(unexpected) > 0 || acked+notFoundAfter != uploads || repeats404 != 500 || records != 0 || objects != 0 || pending != 0 ||
		overlapping != 0 || repeated != afterKill {
		t.Errorf("unexpected: %v", first(unexpected))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
