package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestJobRestartsAreNotFailures: a job handed back at shutdown ten times
// (a long job across deploys) has failed no batch; its first failure
// after that is tried again with backoff, not the end of the job (the
// docs: "after 10 tries the job is FAILED").
func TestJobRestartsAreNotFailures(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, _ := env.NewUser()
	seed(t, env, userID, 10, 0)
	job := start(t, env, userID, nil)
	var shutdown context.CancelFunc
	fail := false
	jobs.SetBeforeBatch(env.App.Jobs, func(context.Context, string, int) error {
		if fail {
			return errors.New("the database blinked")
		}
		shutdown()
		return nil
	})
	for range 10 {
		var ctx context.Context
		ctx, shutdown = context.WithCancel(context.Background())
		if ran, err := env.App.Jobs.RunJob(ctx, job.ID); !ran || err != nil {
			t.Fatalf("restart: %v, %v", ran, err)
		}
		shutdown()
	}
	fail = true
	if ran, err := env.App.Jobs.RunJob(context.Background(), job.ID); !ran || err != nil {
		t.Fatalf("claim after the restarts: %v, %v", ran, err)
	}
	after := env.Client().DeletionJob.GetX(context.Background(), job.ID)
	if after.Status != deletionjob.StatusRUNNING {
		t.Errorf("after 10 restarts and one failed batch the job is %s (%q); want RUNNING, tried again later", after.Status, after.Error)
	}
}
