package queue_test

import (
	"context"
	stdsql "database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/queue"
)

const kind = "purge"

// instance is one instance of the service on a database: its client, with
// the queue's hook on the job table, and its queue, listening.
func instance(t *testing.T, url string) (*ent.Client, *queue.Queue) {
	t.Helper()
	client := open(t, url)
	q := queue.New(client, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	client.ObjectPurge.Use(q.WakeOnDue(kind))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Listen(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; q.Close() })
	if postgres(url) {
		select {
		case <-q.Listening():
		case <-time.After(10 * time.Second):
			t.Fatal("Listen is not listening")
		}
	}
	return client, q
}

// worker runs a worker loop on q whose poll interval is an hour, and
// returns a channel of the ids of the jobs it claims; its first pass,
// before any job is due, is over when worker returns.
func worker(t *testing.T, client *ent.Client, q *queue.Queue) <-chan []int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wake := q.Wakeups(kind)
	claimed, passed := make(chan []int, 10), make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll := time.NewTicker(time.Hour)
		defer poll.Stop()
		for {
			jobs, err := claim(ctx, client, 10)
			if err != nil && ctx.Err() == nil {
				t.Error(err)
			}
			if len(jobs) > 0 {
				claimed <- idsOf(jobs)
			}
			select {
			case passed <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
				return
			case <-poll.C:
			case <-wake:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-passed:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker's first pass did not end")
	}
	return claimed
}

// TestWakeOnDue: a job made due now wakes a worker that polls hourly,
// which then finds it: made due in a transaction (woken once it
// committed) or outside one; on PostgreSQL by another instance, through
// NOTIFY, and on SQLite in the same process.
func TestWakeOnDue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		makeDue func(t *testing.T, client *ent.Client) int
	}{
		{"enqueued in a transaction", func(t *testing.T, client *ent.Client) int {
			tx, err := client.Tx(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ids := addJobs(t, tx.Client(), time.Now())
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			return ids[0]
		}},
		{"made due outside a transaction", func(t *testing.T, client *ent.Client) int {
			ids := addJobs(t, client, time.Now().Add(time.Hour))
			client.ObjectPurge.UpdateOneID(ids[0]).SetNextAttemptAt(time.Now()).ExecX(context.Background())
			return ids[0]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := databaseURL(t)
			client, q := instance(t, url)
			claimed := worker(t, client, q)
			writer := client
			if postgres(url) {
				writer, _ = instance(t, url) // another instance
			}
			id := tc.makeDue(t, writer)
			select {
			case ids := <-claimed:
				if len(ids) != 1 || ids[0] != id {
					t.Fatalf("the worker claimed %v, want %d", ids, id)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the worker was not woken to claim the job made due")
			}
		})
	}
}

// TestOneLeader (PostgreSQL): of two instances exactly one leads; when
// its connection goes (the process died), the other takes the lead at its
// next try, and the first, back, does not lead.
func TestOneLeader(t *testing.T) {
	t.Parallel()
	url := databaseURL(t)
	ctx := context.Background()
	if !postgres(url) {
		_, q := instance(t, url)
		if !q.Leads(ctx) {
			t.Fatal("the one instance of SQLite does not lead")
		}
		return
	}
	_, first := instance(t, url)
	_, second := instance(t, url)
	if !first.Leads(ctx) || second.Leads(ctx) || !first.Leads(ctx) {
		t.Fatal("want the first instance to lead, and only it")
	}
	db, err := stdsql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SELECT pg_terminate_backend($1)", first.LeaderPID()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !second.Leads(ctx); {
		if time.Now().After(deadline) {
			t.Fatal("the second instance did not take the lead once the leader's connection went")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if first.Leads(ctx) {
		t.Fatal("both instances lead")
	}
}
