//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/database"
)

// TestEraseUserKilled runs `users delete` for a user with thousands of
// uploads beside a serving instance, SIGKILLs it at random moments, then
// runs it again, which follows the erase job to its end. Afterwards: none
// of the user's records, objects, keys or the user are left, no object is
// orphaned, no purge is pending, and another user's uploads are intact.
func TestEraseUserKilled(t *testing.T) {
	const uploads, others, kills = 3000, 100, 3
	srv := newServer(t, append(s3Settings(t), "PURGE_POLL_INTERVAL=200ms", "PURGE_MAX_BACKOFF=2s", "RATE_LIMIT=0")...)
	srv.start()
	userID, key := srv.newUser("leaving@example.com")
	otherID, otherKey := srv.newUser("staying@example.com")
	uploadMany(t, srv.url(), key, uploads, 16)
	kept := uploadMany(t, srv.url(), otherKey, others, 8)

	began := time.Now()
	killed := 0
	var leftAfterKills []int // the user's uploads left after each kill
	for range kills {
		cmd := exec.Command(srv.bin, "users", "delete", "--id", userID, "--json")
		cmd.Env = srv.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done: // finished before the kill came
		case <-time.After(time.Duration(30+rand.IntN(120)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
			leftAfterKills = append(leftAfterKills, srv.countUploads(upload.OwnerID(userID)))
		}
	}
	// The last run follows the erase job the killed ones started (the
	// server, or this run, runs it) to its end; if it has ended already,
	// the run says which job erased the user. Its last JSON line is the
	// job's final state with what was erased.
	var last struct {
		UserID         string `json:"user_id"`
		Status         string `json:"status"`
		UploadsDeleted int    `json:"uploads_deleted"`
	}
	out := strings.TrimSpace(string(srv.command("users", "delete", "--id", userID, "--json")))
	if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &last); err != nil || last.UserID != userID || last.Status != "SUCCEEDED" {
		t.Fatalf("the last run printed %+v (%v):\n%s", last, err, out)
	}
	eraseTime := time.Since(began)

	drainStart := time.Now()
	for srv.pendingPurges() > 0 && time.Since(drainStart) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop()
	st := readState(t, srv)
	var recordsLeft, objectsLeft int
	for id, objectKey := range st.records {
		if strings.Contains(objectKey, userID) {
			recordsLeft++
			t.Logf("left: %s", id)
		}
	}
	for objectKey := range st.objects {
		if strings.Contains(objectKey, userID) {
			objectsLeft++
		}
	}
	client, err := database.Open(context.Background(), database.SQLiteURL(filepath.Join(srv.dataDir, "uploads.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	userLeft := client.User.Query().Where(user.ID(userID)).ExistX(context.Background())
	var othersIntact int
	for _, id := range kept {
		if k, ok := st.records[id]; ok && st.objects[k] && strings.Contains(k, otherID) {
			othersIntact++
		}
	}
	orphans, lost := st.orphans(), st.lost()
	t.Logf("FIGURE erase under SIGKILL: a user with %d uploads erased by `users delete` killed %d times, then run to the end, in %s "+
		"(uploads left after each kill: %v; the job deleted %d); afterwards %d of their records, %d of their objects, user left: %v; %d orphaned objects, "+
		"%d records without their object, %d pending purges; the other user's %d of %d uploads intact",
		uploads, killed, eraseTime.Round(time.Millisecond), leftAfterKills, last.UploadsDeleted, recordsLeft, objectsLeft, userLeft,
		len(orphans), len(lost), len(st.purges), othersIntact, others)
	if recordsLeft > 0 || objectsLeft > 0 || userLeft || len(orphans) > 0 || len(lost) > 0 || len(st.purges) > 0 || othersIntact != others {
		t.Errorf("the erasure left something behind or took too much: orphans %v, lost %v", first(orphans), first(lost))
	}
}
