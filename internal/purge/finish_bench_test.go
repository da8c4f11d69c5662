package purge_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// BenchmarkFinishPurges prices the end of purges as the hot path makes
// them (a few purges at a time, gathered for finishGather), three ways
// taking turns in each round, in this process, on the world's database
// (SQLite, or PostgreSQL with TEST_DATABASE_URL), objects removed by a
// fake store, receipts on:
//
//   - before: what every ending did before issue 22's last cuts: notes
//     that do not carry who asked for the delete (the receipts read the
//     DELETED events) and the endpoints read for the "purged" events (the
//     owner has one, listening to upload.created only, so nothing is
//     queued: the read is all it costs);
//   - old-notes: notes that do not carry the request, owner without an
//     endpoint: the events read, not the endpoints (the second cut alone);
//   - after: what a delete's notes are now: neither read.
//
// It reports each way's purges/s and after/before, old-notes/before, and
// the process's CPU time per purge each way.
//
//	go test -run '^$' -bench FinishPurges -benchtime 1x ./internal/purge/
func BenchmarkFinishPurges(b *testing.B) {
	for _, batch := range []int{1, 20} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			rounds := 2000 / batch
			env := testenv.New(b, testenv.Options{NoPurgeLoop: true})
			listening, _ := env.NewUser()
			env.Client().WebhookEndpoint.Create().SetOwnerID(listening).SetURL("https://hooks.example.com").
				SetEvents([]string{"upload.created"}).SetSecret([]byte("sealed")).SaveX(context.Background())
			quiet, _ := env.NewUser()
			purger := purge.New(env.Client(), newFakeObjects(), newLogger(io.Discard), purge.Options{Receipts: env.App.Receipts, InlineTimeout: time.Second})
			ways := []struct {
				name    string
				ownerID string
				carried bool
			}{{"before", listening, false}, {"old-notes", quiet, false}, {"after", quiet, true}}
			ctx := context.Background()
			spent, cpu := map[string]time.Duration{}, map[string]time.Duration{}
			n := 0
			for range b.N {
				for round := range rounds {
					for i := range ways {
						way := ways[(i+round)%len(ways)]
						jobs := deletedBatch(b, env, way.ownerID, batch, &n, way.carried)
						start, startCPU := time.Now(), testenv.CPUTime(b)
						if done := purger.AttemptBatch(ctx, jobs); done != batch {
							b.Fatalf("%s: %d of %d purged", way.name, done, batch)
						}
						spent[way.name] += time.Since(start)
						cpu[way.name] += testenv.CPUTime(b) - startCPU
					}
				}
			}
			if c := env.Client().WebhookDelivery.Query().CountX(ctx); c != 0 {
				b.Fatalf("%d deliveries queued", c)
			}
			per := func(way string) float64 { return float64(b.N*rounds*batch) / spent[way].Seconds() }
			for _, way := range ways {
				b.ReportMetric(per(way.name), "purges/s-"+way.name)
			}
			b.ReportMetric(per("after")/per("before"), "after/before")
			b.ReportMetric(per("old-notes")/per("before"), "old-notes/before")
			// CPU (this process's, the database's included on SQLite) per
			// purge: what the service's throughput on two cores hangs on.
			perCPU := func(way string) float64 { return float64(cpu[way].Microseconds()) / float64(b.N*rounds*batch) }
			for _, way := range ways {
				b.ReportMetric(perCPU(way.name), "cpu-µs/purge-"+way.name)
			}
			b.ReportMetric(perCPU("after")/perCPU("before"), "cpu-after/before")
		})
	}
}
