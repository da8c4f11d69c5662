package purge_test

import (
	"context"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/purge"
)

// TestFinishedRowsGather: the rows of purges finished one after another
// while the first waits to be ended are ended together, in one transaction
// (one call of finish), not one transaction each.
func TestFinishedRowsGather(t *testing.T) {
	t.Parallel()
	gathering, gathered := make(chan struct{}), make(chan struct{})
	batches := make(chan []*ent.ObjectPurge, 3)
	rows := purge.NewDoneRows(func(_ context.Context, jobs []*ent.ObjectPurge) error {
		batches <- jobs
		return nil
	}, func() { close(gathering); <-gathered })

	rows.Add(&ent.ObjectPurge{ID: 1})
	select {
	case <-gathering:
	case jobs := <-batches:
		t.Fatalf("purge %d ended at once, before others could join it", jobs[0].ID)
	}
	rows.Add(&ent.ObjectPurge{ID: 2})
	rows.Add(&ent.ObjectPurge{ID: 3})
	close(gathered)
	rows.Wait()
	close(batches)
	var ended [][]int
	for jobs := range batches {
		var ids []int
		for _, job := range jobs {
			ids = append(ids, job.ID)
		}
		ended = append(ended, ids)
	}
	if len(ended) != 1 || len(ended[0]) != 3 {
		t.Errorf("ended %v, want [[1 2 3]] (one transaction)", ended)
	}
}
