package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/testenv"
)

// BenchmarkRecordOne prices a single delete's audit event, as the hot
// path records it (one owner, one event, in the delete's transaction), two
// ways taking turns, in this process, on the test database (SQLite, or
// PostgreSQL with TEST_DATABASE_URL):
//
//   - taken: the owner's chain head taken (an upsert that locks and
//     returns it), the event inserted, the head moved on: every event
//     before issue 22's chain-head guess, and now one whose guess is
//     missing or wrong;
//   - guessed: the head moved on from the one this process last wrote
//     (one upsert that changes it only if it still is), the event
//     inserted;
//   - wrong: the same upsert after a transaction rolled back (the guess is
//     its head, not the database's), which returns the head instead, the
//     event inserted, the head moved on: as taken.
//
// It reports the time and the process's CPU (the database's included on
// SQLite) per event spent in Record, guessed/taken and wrong/taken; the
// commit is not counted (the same every way).
//
//	go test -run '^$' -bench RecordOne -benchtime 2000x ./internal/audit/
func BenchmarkRecordOne(b *testing.B) {
	client := testenv.OpenDatabase(b)
	ctx := context.Background()
	ways := []string{"taken", "guessed", "wrong"}
	undone := errors.New("rolled back")
	spent, cpu := map[string]time.Duration{}, map[string]time.Duration{}
	for i := range b.N {
		for j := range ways {
			way := ways[(i+j)%len(ways)]
			switch way {
			case "taken":
				audit.ForgetHints()
			case "wrong":
				err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
					if _, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, audit.Subject{ID: "upl_undone", OwnerID: "usr_bench"}); err != nil {
						return err
					}
					return undone
				})
				if err != undone {
					b.Fatal(err)
				}
			}
			err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
				start, startCPU := time.Now(), testenv.CPUTime(b)
				_, err := audit.Record(ctx, tx, audit.CLI, audit.Deleted, audit.Subject{ID: fmt.Sprintf("upl_%d_%s", i, way), OwnerID: "usr_bench"})
				spent[way] += time.Since(start)
				cpu[way] += testenv.CPUTime(b) - startCPU
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if r, err := audit.Verify(ctx, client, "usr_bench"); err != nil || len(r.Breaks) != 0 {
		b.Fatalf("%+v %v", r, err)
	}
	for _, way := range ways {
		b.ReportMetric(float64(spent[way].Microseconds())/float64(b.N), "µs/event-"+way)
		b.ReportMetric(float64(cpu[way].Microseconds())/float64(b.N), "cpu-µs/event-"+way)
	}
	b.ReportMetric(float64(spent["guessed"])/float64(spent["taken"]), "guessed/taken")
	b.ReportMetric(float64(spent["wrong"])/float64(spent["taken"]), "wrong/taken")
}
