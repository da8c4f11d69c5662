package webhook_test

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestOneCommitPerDelivery: a worker whose attempt got an answer takes its
// next delivery in the commit that records the outcome, so sending a
// backlog costs one commit per delivery, not two (a claim, then the
// outcome). Each commit waits for the disk (PostgreSQL's WAL flush), so
// two per delivery halved the pace a worker keeps (issue 26). Each
// upload's events still arrive in order.
func TestOneCommitPerDelivery(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	const uploads = 5
	for range uploads {
		upload := ids.NewUpload()
		w.enqueue(event(webhook.EventUploadDeleted, owner, upload))
		w.enqueue(event(webhook.EventUploadPurged, owner, upload))
	}
	var mu sync.Mutex
	var writes []string
	client := countingClient(t, w.url, func(write string) {
		mu.Lock()
		writes = append(writes, write)
		mu.Unlock()
	})
	// One worker, and no poll: every claim after the first is one that
	// attempts ending make.
	sender := w.senderOn(client, webhook.Options{AllowPrivateNetworks: true, Concurrency: 1, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sender.Run(ctx, nil) }()
	eventually(t, 10*time.Second, "the backlog to be delivered", func() bool {
		left, err := w.client.WebhookDelivery.Query().Where(webhookdelivery.StatusNEQ(webhookdelivery.StatusDELIVERED)).Count(ctx)
		return err == nil && left == 0
	})
	cancel()
	<-done
	deleted := map[string]bool{}
	for _, a := range rcv.got() {
		if a.Type == webhook.EventUploadPurged && !deleted[a.UploadID] {
			t.Fatalf("upload %s: upload.purged arrived before its upload.deleted", a.UploadID)
		}
		deleted[a.UploadID] = true
	}
	mu.Lock()
	defer mu.Unlock()
	// The first claim, then one commit per delivery, each claiming the
	// next; and a claim of its own for the last upload.purged, which waited
	// for the delivery whose commit came next (claims read before).
	if want := 2 + 2*uploads; len(writes) > want {
		t.Fatalf("sending %d deliveries one at a time took %d writes that wait for the disk, want %d at most:\n%s",
			2*uploads, len(writes), want, strings.Join(writes, "\n"))
	}
}

// countingClient is a client of the world's database that calls write for
// each commit of a transaction, and for each write statement sent outside
// one (it commits on its own).
func countingClient(t *testing.T, url string, write func(string)) *ent.Client {
	t.Helper()
	driverName, dsn, engine := "sqlite3", database.SQLiteDSN(strings.TrimPrefix(url, "sqlite://")), dialect.SQLite
	if !strings.HasPrefix(url, "sqlite://") {
		driverName, dsn, engine = "pgx", url, dialect.Postgres
	}
	db, err := stdsql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	counted := dialect.DebugWithContext(entsql.OpenDB(engine, db), func(_ context.Context, v ...any) {
		msg := fmt.Sprint(v...)
		statement, alone := strings.CutPrefix(msg, "driver.Query")
		if !alone {
			statement, alone = strings.CutPrefix(msg, "driver.Exec")
		}
		_, query, _ := strings.Cut(statement, "query=")
		verb, _, _ := strings.Cut(query, " ")
		switch {
		case strings.HasSuffix(msg, "): committed"):
			write("COMMIT")
		case alone && (verb == "UPDATE" || verb == "INSERT" || verb == "DELETE"):
			write(query)
		}
	})
	return ent.NewClient(ent.Driver(counted))
}

// TestClaimBehindABacklog: a claim stays quick while thousands of
// deliveries wait, each upload's upload.purged behind its upload.deleted,
// on tables PostgreSQL has no statistics of yet (they filled since the
// last ANALYZE, as a burst of deletes fills them). Its check for an
// earlier delivery of the same upload once read every pending delivery of
// the endpoint for each due one: a claim took a second with 5,000 waiting,
// and the sender fell behind the deletes (issue 26).
func TestClaimBehindABacklog(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner, _, _ := w.endpoint("https://hooks.example.com/backlog")
	const uploads = 2000
	var events []webhook.Event
	for range uploads {
		upload := ids.NewUpload()
		events = append(events, event(webhook.EventUploadDeleted, owner, upload), event(webhook.EventUploadPurged, owner, upload))
	}
	for chunk := range slices.Chunk(events, 500) {
		w.enqueue(chunk...)
	}
	sender := w.sender(local)
	began := time.Now()
	claimed, err := sender.Claim(context.Background())
	took := time.Since(began)
	if err != nil || len(claimed) == 0 {
		t.Fatalf("Claim = %d, %v", len(claimed), err)
	}
	for _, d := range claimed {
		if d.EventType != webhook.EventUploadDeleted {
			t.Fatalf("claimed an %s while its upload's upload.deleted waits", d.EventType)
		}
	}
	if took > 300*time.Millisecond {
		t.Fatalf("a claim behind %d waiting deliveries took %s, want well under 300ms", 2*uploads, took.Round(time.Millisecond))
	}
	t.Logf("a claim behind %d waiting deliveries took %s", 2*uploads, took.Round(time.Millisecond))
}
