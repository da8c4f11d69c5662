package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
)

// TestUsersDeleteAndJobsCommandLine: with no server, users delete --detach
// leaves a QUEUED job; jobs list shows it; jobs watch follows it until
// jobs cancel ends it, and exits 1 saying CANCELED; the user stays. Run
// again without --detach, users delete erases them, in plain progress
// lines when its output is not a terminal (no bar's escapes), and exits 0.
func TestUsersDeleteAndJobsCommandLine(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATA_DIR": t.TempDir()}
	run := runCommandLine(t, env, "users", "create", "--email", "leaving@example.com", "--json")
	var created struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &created); err != nil || run.status != 0 {
		t.Fatalf("users create: %v\n%s%s", err, run.stdout, run.stderr)
	}
	db, err := app.OpenDatabase(context.Background(), &config.Config{DataDir: env["DATA_DIR"]})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	creates := make([]*ent.UploadCreate, 0, 1500)
	for i := range cap(creates) {
		creates = append(creates, db.Upload.Create().SetOwnerID(created.UserID).SetFilename(fmt.Sprintf("f%d", i)).
			SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED))
	}
	db.Upload.CreateBulk(creates...).SaveX(context.Background())

	run = runCommandLine(t, env, "users", "delete", "--id", created.UserID, "--detach")
	jobID := strings.TrimSpace(run.stdout)
	if run.status != 0 || !regexp.MustCompile(`^job_[0-9a-f]{32}$`).MatchString(jobID) {
		t.Fatalf("users delete --detach: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	if run := runCommandLine(t, env, "jobs", "list", "--status", "queued"); run.status != 0 ||
		!regexp.MustCompile(jobID+` +USER_ERASE +`+created.UserID+` +QUEUED +1500 +0 +0 `).MatchString(run.stdout) {
		t.Errorf("jobs list: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}

	watched := make(chan commandLineRun, 1)
	go func() { watched <- runCommandLine(t, env, "jobs", "watch", "--id", jobID) }()
	if run := runCommandLine(t, env, "jobs", "cancel", "--id", jobID); run.status != 0 {
		t.Fatalf("jobs cancel: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	if run := <-watched; run.status != 1 || !strings.Contains(run.stderr, "was CANCELED") ||
		!strings.Contains(run.stdout, "Job "+jobID+" CANCELED: 0 of 1500 uploads deleted.") {
		t.Errorf("jobs watch of a canceled job: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	if !db.User.Query().Where(user.ID(created.UserID)).ExistX(context.Background()) {
		t.Fatal("a canceled erase removed the user")
	}

	run = runCommandLine(t, env, "users", "delete", "--id", created.UserID)
	if run.status != 0 || !strings.Contains(run.stdout, "Deleted user "+created.UserID+": 1500 uploads deleted") {
		t.Fatalf("users delete: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	if strings.ContainsAny(run.stdout, "\r\x1b") || !regexp.MustCompile(`(?m)^job_[0-9a-f]{32} QUEUED: 0 of 1500 uploads deleted$`).MatchString(run.stdout) {
		t.Errorf("users delete into a pipe: want plain progress lines, got %q", run.stdout)
	}
	if db.User.Query().Where(user.ID(created.UserID)).ExistX(context.Background()) ||
		db.Upload.Query().Where(upload.OwnerID(created.UserID)).ExistX(context.Background()) {
		t.Error("the user or their uploads are left")
	}
}
