package purge_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/purge"
	"github.com/safedelete/uploads/internal/testenv"
)

// BenchmarkPurgeNote prices a single delete's purge note two ways taking
// turns, in this process, on the world's database (SQLite, or PostgreSQL
// with TEST_DATABASE_URL): through Ent's create (what every delete's was)
// and through the statement built once that ScheduleFor now uses for one
// upload. Each round writes 100 notes a way in one transaction, so that
// the commit does not hide the statements. It reports each way's CPU time
// (this process's, SQLite's included) and wall time per note, and their
// ratios.
//
//	go test -run '^$' -bench PurgeNote -benchtime 20x ./internal/purge/
func BenchmarkPurgeNote(b *testing.B) {
	const perRound = 100
	env := testenv.New(b, testenv.Options{NoPurgeLoop: true})
	purger := purge.New(env.Client(), newFakeObjects(), newLogger(io.Discard), purge.Options{InlineTimeout: time.Second})
	ctx := context.Background()
	n := 0
	plan := func() *ent.ObjectPurge {
		n++
		id := fmt.Sprintf("upl_%032x", n)
		now := time.Now()
		return &ent.ObjectPurge{
			UploadID: id, OwnerID: "usr_1", Filename: "f.txt", Size: 1, UploadStatus: "COMPLETED", Bucket: "bench", ObjectKey: id,
			RequestedBy: "key_1", RequestedVia: "REST", Attempts: 1, NextAttemptAt: now.Add(time.Hour), CreatedAt: now,
		}
	}
	ways := map[string]func(tx *ent.Tx) error{
		"ent": func(tx *ent.Tx) error {
			_, err := purge.CreateBulk(ctx, tx, []*ent.ObjectPurge{plan()})
			return err
		},
		"built-once": func(tx *ent.Tx) error { return purger.InsertOne(ctx, tx, plan()) },
	}
	order := []string{"ent", "built-once"}
	cpu, wall := map[string]time.Duration{}, map[string]time.Duration{}
	for round := range b.N {
		for i := range order {
			way := order[(i+round)%len(order)]
			err := database.WithTx(ctx, env.Client(), func(tx *ent.Tx) error {
				start, startCPU := time.Now(), testenv.CPUTime(b)
				for range perRound {
					if err := ways[way](tx); err != nil {
						return err
					}
				}
				wall[way] += time.Since(start)
				cpu[way] += testenv.CPUTime(b) - startCPU
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(b.N*perRound) }
	for _, way := range order {
		b.ReportMetric(per(cpu[way]), "cpu-µs/note-"+way)
		b.ReportMetric(per(wall[way]), "µs/note-"+way)
	}
	b.ReportMetric(per(cpu["built-once"])/per(cpu["ent"]), "cpu-built-once/ent")
	b.ReportMetric(per(wall["built-once"])/per(wall["ent"]), "wall-built-once/ent")
}
