package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestJobLeavesRestoredUploads: an upload in the trash when the job
// started, restored while it runs, did not exist when the job started and
// was not matched: the job leaves it, as it leaves an upload created later.
func TestJobLeavesRestoredUploads(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true, Configure: func(c *config.Config) {
		c.DeleteRetention = time.Hour
	}})
	userID, key := env.NewUser()
	seed(t, env, userID, 5, 0)
	kept := env.MustUpload(key, "kept.txt", []byte("kept"))
	if r := env.GraphQL(key, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": kept.ID}); len(r.Errors) > 0 {
		t.Fatalf("delete: %+v", r.Errors)
	}
	job := start(t, env, userID, &ent.UploadWhereInput{})
	if job.MatchedCount != 5 {
		t.Fatalf("matched %d, want 5 (the one in the trash is not)", job.MatchedCount)
	}
	if r := env.GraphQL(key, `mutation($id: ID!) { restoreUpload(id: $id) { id } }`, map[string]any{"id": kept.ID}); len(r.Errors) > 0 {
		t.Fatalf("restore: %+v", r.Errors)
	}
	if ran, err := env.App.Jobs.RunOnce(context.Background()); ran != 1 || err != nil {
		t.Fatalf("RunOnce: %d, %v", ran, err)
	}
	done := env.Client().DeletionJob.GetX(context.Background(), job.ID)
	if done.Status != deletionjob.StatusSUCCEEDED || done.DeletedCount != 5 {
		t.Errorf("finished: %s, deleted %d; want SUCCEEDED, 5 (matched %d)", done.Status, done.DeletedCount, done.MatchedCount)
	}
	env.AssertIntact(kept)
}
