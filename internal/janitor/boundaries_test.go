package janitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/purge"
)

// TestStuckDeadlineBoundaries: an upload is stuck once it has been PENDING
// for longer than UPLOAD_TIMEOUT plus the purger's margin, and not a moment
// sooner: one just past that is marked FAILED with its object purged; one
// just inside the margin (past the timeout alone) is still storing, as far
// as anyone can know, and is left alone with its object.
func TestStuckDeadlineBoundaries(t *testing.T) {
	t.Parallel()
	env := newEnv(t, 0)
	userID, _ := env.NewUser()
	ctx := context.Background()
	deadline := env.Config.UploadTimeout + purge.PendingMargin
	const slack = 3 * time.Second // far more than the test takes to reach RunOnce
	past := stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-deadline-slack))
	inside := stored(t, env, userID, upload.StatusPENDING, time.Now().Add(-deadline+slack))

	failed, _, err := env.App.Janitor.RunOnce(ctx)
	if err != nil || failed != 1 {
		t.Fatalf("RunOnce marked %d failed (%v); want 1: the one past timeout + margin", failed, err)
	}
	if u := env.Client().Upload.GetX(ctx, past.ID); u.Status != upload.StatusFAILED || env.ObjectExists(past.ObjectKey) {
		t.Errorf("PENDING for timeout + margin + %s: %s, object there %v; want FAILED, object purged",
			slack, u.Status, env.ObjectExists(past.ObjectKey))
	}
	if u := env.Client().Upload.GetX(ctx, inside.ID); u.Status != upload.StatusPENDING || !env.ObjectExists(inside.ObjectKey) {
		t.Errorf("PENDING for timeout + margin - %s: %s, object there %v; want left PENDING with its object",
			slack, u.Status, env.ObjectExists(inside.ObjectKey))
	}
}
