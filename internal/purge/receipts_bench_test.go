package purge_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// BenchmarkBatchReceipts prices deletion receipts where the purger pays
// for them: a batch of 1,000 finished purges (objects removed by a fake
// store, so that S3's time does not hide the database's and the
// signatures'), ended with and without receipts, the two sides taking
// turns in each round, in this process, on the world's database (SQLite,
// or PostgreSQL with TEST_DATABASE_URL). It reports each side's purges/s
// and their ratio.
//
//	go test -run '^$' -bench BatchReceipts -benchtime 1x ./internal/purge/
func BenchmarkBatchReceipts(b *testing.B) {
	const batch, rounds = 1000, 10
	env := testenv.New(b, testenv.Options{NoPurgeLoop: true})
	ownerID, _ := env.NewUser()
	ctx := context.Background()
	sides := map[string]*purge.Purger{
		"receipts":    purge.New(env.Client(), newFakeObjects(), newLogger(io.Discard), purge.Options{Receipts: env.App.Receipts, InlineTimeout: time.Second}),
		"no-receipts": purge.New(env.Client(), newFakeObjects(), newLogger(io.Discard), purge.Options{InlineTimeout: time.Second}),
	}
	spent := map[string]time.Duration{}
	n := 0
	for range b.N {
		for round := range rounds {
			order := []string{"receipts", "no-receipts"}
			if round%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, side := range order {
				jobs := deletedBatch(b, env, ownerID, batch, &n, true)
				start := time.Now()
				if done := sides[side].AttemptBatch(ctx, jobs); done != batch {
					b.Fatalf("%s: %d of %d purged", side, done, batch)
				}
				spent[side] += time.Since(start)
			}
		}
	}
	per := func(side string) float64 { return float64(b.N*rounds*batch) / spent[side].Seconds() }
	b.ReportMetric(per("receipts"), "purges/s-receipts")
	b.ReportMetric(per("no-receipts"), "purges/s-none")
	b.ReportMetric(per("receipts")/per("no-receipts"), "ratio")
}

// deletedBatch writes, as a delete would, size purges of the owner's
// uploads with their DELETED audit events, and returns the purges. carried:
// the purges carry who asked for the delete, as every delete's do since
// they can (purge.Request); otherwise they are notes written before that,
// whose receipts read the events.
func deletedBatch(b *testing.B, env *testenv.Env, ownerID string, size int, n *int, carried bool) []*ent.ObjectPurge {
	b.Helper()
	ctx := context.Background()
	var jobs []*ent.ObjectPurge
	at := time.Now().Truncate(time.Microsecond)
	err := database.WithTx(ctx, env.Client(), func(tx *ent.Tx) error {
		creates := make([]*ent.ObjectPurgeCreate, size)
		subjects := make([]audit.Subject, size)
		for i := range creates {
			*n++
			id := fmt.Sprintf("upl_%032x", *n)
			subjects[i] = audit.Subject{ID: id, OwnerID: ownerID, Filename: "f.txt", Size: 1, Status: "COMPLETED"}
			creates[i] = tx.ObjectPurge.Create().SetBucket("bench").SetObjectKey(id).SetUploadID(id).
				SetOwnerID(ownerID).SetFilename("f.txt").SetSize(1).SetUploadStatus("COMPLETED").
				SetNextAttemptAt(time.Now().Add(time.Hour)).SetCreatedAt(at)
			if carried {
				creates[i].SetRequestedBy(audit.CLI.Name).SetRequestedVia(string(audit.CLI.Via))
			}
		}
		var err error
		if jobs, err = tx.ObjectPurge.CreateBulk(creates...).Save(ctx); err != nil {
			return err
		}
		_, err = audit.RecordAt(ctx, tx, audit.CLI, audit.Deleted, at, subjects...)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return jobs
}
