package queue_test

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/queue"
	"github.com/safedelete/uploads/internal/testenv"
)

// The tests claim purges: object_purges is a job table like any other.

// databaseURL is a database of the test's own: a SQLite file, or a
// PostgreSQL schema when TEST_DATABASE_URL is set.
func databaseURL(t *testing.T) string {
	if url := testenv.PostgresSchema(t); url != "" {
		return url
	}
	return database.SQLiteURL(filepath.Join(t.TempDir(), "queue.db"))
}

func postgres(url string) bool { return !strings.HasPrefix(url, "sqlite://") }

func open(t *testing.T, url string) *ent.Client {
	t.Helper()
	client, err := database.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// addJobs adds a purge due at each of dueAt, and returns their ids.
func addJobs(t *testing.T, client *ent.Client, dueAt ...time.Time) []int {
	t.Helper()
	creates := make([]*ent.ObjectPurgeCreate, len(dueAt))
	for i, at := range dueAt {
		creates[i] = client.ObjectPurge.Create().SetBucket("b").SetObjectKey(fmt.Sprintf("k%04d", i)).
			SetUploadID("upl_test").SetNextAttemptAt(at)
	}
	var ids []int
	for chunk := range slices.Chunk(creates, 500) {
		jobs, err := client.ObjectPurge.CreateBulk(chunk...).Save(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// claim claims up to limit purges due now (of ids, if given) for a minute.
func claim(ctx context.Context, client *ent.Client, limit int, ids ...int) ([]*ent.ObjectPurge, error) {
	now := time.Now()
	return queue.Claim[*ent.ObjectPurge](ctx, client, queue.Batch{
		Table: objectpurge.Table, Limit: limit, IDs: ids,
		Now: now, LeaseEnd: now.Add(time.Minute), Returning: objectpurge.Columns,
	})
}

func idsOf(jobs []*ent.ObjectPurge) []int {
	ids := make([]int, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	slices.Sort(ids)
	return ids
}

// TestClaimTakesTheOldestDue: a claim takes the rows due, oldest first,
// as many as asked, and returns them as they are once claimed (an attempt
// more, due when the lease ends); rows not due, or leased, or left out by
// the batch's own condition stay.
func TestClaimTakesTheOldestDue(t *testing.T) {
	t.Parallel()
	client := open(t, databaseURL(t))
	ctx := context.Background()
	now := time.Now()
	ids := addJobs(t, client,
		now.Add(-time.Minute), now.Add(-3*time.Minute), now.Add(-2*time.Minute), // due
		now.Add(time.Minute), // not yet
	)
	// Due, but left out by the batch's condition.
	client.ObjectPurge.Create().SetBucket("b").SetObjectKey("k").SetUploadID("upl_test").
		SetAbortAllMultipart(true).SetNextAttemptAt(now.Add(-4 * time.Minute)).ExecX(ctx)
	leaseEnd := now.Add(time.Hour).Truncate(time.Millisecond)
	batch := queue.Batch{
		Table: objectpurge.Table, Limit: 2, Now: now, LeaseEnd: leaseEnd, Returning: objectpurge.Columns,
		Where: []func(*entsql.Selector){objectpurge.AbortAllMultipart(false)},
	}
	first, err := queue.Claim[*ent.ObjectPurge](ctx, client, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := idsOf(first), []int{ids[1], ids[2]}; !slices.Equal(got, want) {
		t.Fatalf("first claim took %v, want the two oldest due %v", got, want)
	}
	for _, job := range first {
		if job.Attempts != 1 || !job.NextAttemptAt.Equal(leaseEnd) || job.ObjectKey == "" {
			t.Errorf("claimed %+v, want attempts 1 and due at the lease's end %v, with its columns", job, leaseEnd)
		}
	}
	second, err := queue.Claim[*ent.ObjectPurge](ctx, client, batch)
	if err != nil || !slices.Equal(idsOf(second), []int{ids[0]}) {
		t.Fatalf("second claim took %v, %v; want the last one due, %d", idsOf(second), err, ids[0])
	}
	if third, err := queue.Claim[*ent.ObjectPurge](ctx, client, batch); err != nil || len(third) != 0 {
		t.Fatalf("third claim took %v, %v; want none", idsOf(third), err)
	}
}

// TestClaimGivenIDs: claiming rows read earlier takes those still due and
// leaves the others: claimed since, or not due.
func TestClaimGivenIDs(t *testing.T) {
	t.Parallel()
	client := open(t, databaseURL(t))
	ctx := context.Background()
	now := time.Now()
	ids := addJobs(t, client, now.Add(-time.Minute), now.Add(-time.Minute), now.Add(-time.Minute), now.Add(time.Minute))
	if taken, err := claim(ctx, client, 0, ids[1]); err != nil || !slices.Equal(idsOf(taken), ids[1:2]) {
		t.Fatalf("claimed %v, %v; want %v", idsOf(taken), err, ids[1:2])
	}
	taken, err := claim(ctx, client, 0, ids[1:]...)
	if err != nil || !slices.Equal(idsOf(taken), ids[2:3]) {
		t.Fatalf("claimed %v, %v; want only %v (the others are leased or not due)", idsOf(taken), err, ids[2:3])
	}
}

// TestClaimIsOneStatement: a claim of many rows costs one statement (plus,
// on SQLite, its transaction), however many rows it takes.
func TestClaimIsOneStatement(t *testing.T) {
	t.Parallel()
	url := databaseURL(t)
	var statements atomic.Int64
	client := countingClient(t, url, &statements)
	now := time.Now()
	due := make([]time.Time, 50)
	for i := range due {
		due[i] = now.Add(-time.Minute)
	}
	addJobs(t, client, due...)
	statements.Store(0)
	claimed, err := claim(context.Background(), client, 100)
	if err != nil || len(claimed) != 50 {
		t.Fatalf("claimed %d, %v; want all 50", len(claimed), err)
	}
	if n := statements.Load(); n != 1 {
		t.Fatalf("a claim of 50 rows sent %d statements, want 1", n)
	}
}

// countingClient is a client of url that counts the statements it sends
// (transactions' begin and end aside).
func countingClient(t *testing.T, url string, statements *atomic.Int64) *ent.Client {
	t.Helper()
	driverName, dsn, engine := "sqlite3", database.SQLiteDSN(strings.TrimPrefix(url, "sqlite://")), dialect.SQLite
	if postgres(url) {
		driverName, dsn, engine = "pgx", url, dialect.Postgres
	}
	db, err := stdsql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := database.Migrate(context.Background(), db, engine); err != nil {
		t.Fatal(err)
	}
	counted := dialect.DebugWithContext(entsql.OpenDB(engine, db), func(_ context.Context, v ...any) {
		msg := fmt.Sprint(v...)
		if strings.Contains(msg, ".Query") || strings.Contains(msg, ".Exec") {
			statements.Add(1)
		}
	})
	return ent.NewClient(ent.Driver(counted))
}

// TestClaimersRace: workers claiming the same due rows at once never take
// one row twice, and between them take them all.
func TestClaimersRace(t *testing.T) {
	t.Parallel()
	url := databaseURL(t)
	clients := []*ent.Client{open(t, url), open(t, url)} // two instances
	now := time.Now()
	due := make([]time.Time, 600)
	for i := range due {
		due[i] = now.Add(-time.Minute)
	}
	all := addJobs(t, clients[0], due...)
	var mu sync.Mutex
	var taken []int
	var wg sync.WaitGroup
	for w := range 4 { // two workers in each instance
		client := clients[w%2]
		wg.Go(func() {
			for range len(all) { // bounded: a claim that takes rows again never runs dry
				claimed, err := claim(context.Background(), client, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				mu.Lock()
				taken = append(taken, idsOf(claimed)...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(taken)
	for i := 1; i < len(taken); i++ {
		if taken[i] == taken[i-1] {
			t.Fatalf("row %d claimed twice", taken[i])
		}
	}
	if !slices.Equal(taken, all) {
		t.Fatalf("claimed %d rows of %d", len(taken), len(all))
	}
}

// TestClaimSkipsLockedRows (PostgreSQL): a claim does not wait for rows
// another worker is claiming; it takes the others.
func TestClaimSkipsLockedRows(t *testing.T) {
	t.Parallel()
	url := databaseURL(t)
	if !postgres(url) {
		t.Skip("SQLite has one writer at a time; needs TEST_DATABASE_URL")
	}
	client := open(t, url)
	ctx := context.Background()
	ids := addJobs(t, client, time.Now().Add(-2*time.Minute), time.Now().Add(-time.Minute))
	tx, err := client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT id FROM object_purges WHERE id = $1 FOR UPDATE", ids[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	claimed, err := claim(ctx, client, 10)
	if err != nil || !slices.Equal(idsOf(claimed), ids[1:]) {
		t.Fatalf("claimed %v, %v; want %v at once, the locked row skipped", idsOf(claimed), err, ids[1:])
	}
}
