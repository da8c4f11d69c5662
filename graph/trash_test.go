package graph_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

const (
	restoreMutation = `mutation($id: ID!) { restoreUpload(id: $id) { id filename status size } }`
	purgeMutation   = `mutation($id: ID!) { purgeUpload(id: $id) { purgedUploadId } }`
	trashQuery      = `{ viewer { deletedUploads { totalCount edges { node { id filename status deletedAt purgeAt } } } } }`
)

type trashEntry struct {
	ID        string    `json:"id"`
	Filename  string    `json:"filename"`
	Status    string    `json:"status"`
	DeletedAt time.Time `json:"deletedAt"`
	PurgeAt   time.Time `json:"purgeAt"`
}

func withTrash(window time.Duration) testenv.Options {
	return testenv.Options{Configure: func(c *config.Config) { c.DeleteRetention = window }}
}

// trash returns the caller's viewer.deletedUploads.
func trash(t *testing.T, env *testenv.Env, key string) []trashEntry {
	t.Helper()
	res := env.GraphQL(key, trashQuery, nil)
	var data struct {
		Viewer struct {
			DeletedUploads struct {
				TotalCount int
				Edges      []struct{ Node trashEntry }
			}
		}
	}
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("deletedUploads: %+v %s", res.Errors, res.Data)
	}
	var out []trashEntry
	for _, e := range data.Viewer.DeletedUploads.Edges {
		out = append(out, e.Node)
	}
	if data.Viewer.DeletedUploads.TotalCount != len(out) {
		t.Errorf("totalCount %d, %d edges", data.Viewer.DeletedUploads.TotalCount, len(out))
	}
	return out
}

// restore calls restoreUpload and returns the upload's id, or the error code.
func restore(t *testing.T, env *testenv.Env, key, id string) (restoredID, code string) {
	t.Helper()
	res := env.GraphQL(key, restoreMutation, map[string]any{"id": id})
	if len(res.Errors) > 0 {
		return "", res.Errors[0].Code()
	}
	var data struct{ RestoreUpload struct{ ID string } }
	if err := res.Decode(&data); err != nil {
		t.Fatal(err)
	}
	return data.RestoreUpload.ID, ""
}

func listed(t *testing.T, env *testenv.Env, key, id string) bool {
	t.Helper()
	res := env.GraphQL(key, `query($id: ID!) { upload(id: $id) { id } }`, map[string]any{"id": id})
	var data struct{ Upload *struct{ ID string } }
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("upload(id): %+v", res.Errors)
	}
	return data.Upload != nil
}

// closeWindow makes an upload's restore window end now, as the clock would.
func closeWindow(t *testing.T, env *testenv.Env, id string) {
	t.Helper()
	ctx, past := context.Background(), time.Now().Add(-time.Second)
	if err := env.Client().DeletedUpload.UpdateOneID(id).SetPurgeAt(past).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.Client().ObjectPurge.Update().Where(objectpurge.UploadID(id)).SetNextAttemptAt(past).Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTrashContract walks the trash's cases: a delete that keeps the object
// for the window, restore, purge, the window's end, other users.
func TestTrashContract(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	a := env.MustUpload(key, "a.txt", []byte("a"))
	b := env.MustUpload(key, "b.txt", []byte("b"))
	c := env.MustUpload(key, "c.txt", []byte("c"))
	never := env.MustUpload(key, "never.txt", []byte("never deleted"))

	t.Run("a delete answers as always and keeps the object", func(t *testing.T) {
		before := time.Now()
		res := env.DeleteREST(key, a.ID)
		want := fmt.Sprintf(`{"message":"Upload %s deleted successfully"}`, a.ID)
		if res.Status != http.StatusOK || string(res.Body) != want {
			t.Fatalf("REST delete: %d %q", res.Status, res.Body)
		}
		if res := env.DeleteREST(key, a.ID); res.Status != http.StatusNotFound {
			t.Errorf("repeat: %d, want 404", res.Status)
		}
		if listed(t, env, key, a.ID) {
			t.Error("upload(id) still answers")
		}
		if !env.ObjectExists(a.ObjectKey) {
			t.Error("object purged although the window is open")
		}
		entries := trash(t, env, key)
		if len(entries) != 1 || entries[0].ID != a.ID || entries[0].Status != "COMPLETED" || entries[0].Filename != "a.txt" {
			t.Fatalf("deletedUploads = %+v", entries)
		}
		if d := entries[0].PurgeAt.Sub(entries[0].DeletedAt); d != time.Hour {
			t.Errorf("purgeAt - deletedAt = %s, want the window (1h)", d)
		}
		if entries[0].DeletedAt.Before(before.Add(-time.Second)) {
			t.Errorf("deletedAt %s is before the delete", entries[0].DeletedAt)
		}
		if got := trash(t, env, otherKey); len(got) != 0 {
			t.Errorf("another user sees %+v in their trash", got)
		}
	})
	t.Run("someone else's: NOT_FOUND, and it stays in the trash", func(t *testing.T) {
		if _, code := restore(t, env, otherKey, a.ID); code != "NOT_FOUND" {
			t.Errorf("restore by another user: %q", code)
		}
		expectError(t, env.GraphQL(otherKey, purgeMutation, map[string]any{"id": a.ID}), "NOT_FOUND", "Upload not found in the trash")
		if !env.ObjectExists(a.ObjectKey) || len(trash(t, env, key)) != 1 {
			t.Error("another user's call changed the trash")
		}
	})
	t.Run("never deleted, unknown, malformed: NOT_FOUND", func(t *testing.T) {
		for _, id := range []string{never.ID, "upl_00000000000000000000000000000000", "nope", ""} {
			if _, code := restore(t, env, key, id); code != "NOT_FOUND" {
				t.Errorf("restore %q: %q", id, code)
			}
		}
		env.AssertIntact(never)
	})
	t.Run("restore: the same upload, listed again, deletable again", func(t *testing.T) {
		id, code := restore(t, env, key, a.ID)
		if code != "" || id != a.ID {
			t.Fatalf("restore: %q %q", id, code)
		}
		env.AssertIntact(a)
		if !listed(t, env, key, a.ID) || len(trash(t, env, key)) != 0 {
			t.Error("restored upload not listed, or still in the trash")
		}
		if n := env.PendingPurges(); n != 0 {
			t.Errorf("%d purges left pending: the restored object would be purged", n)
		}
		if _, code := restore(t, env, key, a.ID); code != "NOT_FOUND" {
			t.Errorf("second restore: %q", code)
		}
		if res := env.DeleteREST(key, a.ID); res.Status != http.StatusOK {
			t.Errorf("delete after restore: %d", res.Status)
		}
	})
	t.Run("purgeUpload: gone now, and no restore after", func(t *testing.T) {
		res := env.GraphQL(key, purgeMutation, map[string]any{"id": a.ID})
		if len(res.Errors) > 0 {
			t.Fatalf("purgeUpload: %+v", res.Errors)
		}
		if env.ObjectExists(a.ObjectKey) {
			t.Error("object left after purgeUpload")
		}
		if _, code := restore(t, env, key, a.ID); code != "NOT_FOUND" {
			t.Errorf("restore after purge: %q", code)
		}
		expectError(t, env.GraphQL(key, purgeMutation, map[string]any{"id": a.ID}), "NOT_FOUND", "Upload not found in the trash")
		if got := trash(t, env, key); len(got) != 0 {
			t.Errorf("trash after purge: %+v", got)
		}
	})
	t.Run("the window ends: purged, and no restore", func(t *testing.T) {
		deleted, _ := deleteMany(t, env, key, []string{b.ID})
		if len(deleted) != 1 {
			t.Fatal("delete b")
		}
		closeWindow(t, env, b.ID)
		if _, code := restore(t, env, key, b.ID); code != "NOT_FOUND" {
			t.Errorf("restore after the window: %q", code)
		}
		if got := trash(t, env, key); len(got) != 0 {
			t.Errorf("deletedUploads lists an upload whose window closed: %+v", got)
		}
		env.Eventually(5*time.Second, "the purger removes the object", func() bool { return !env.ObjectExists(b.ObjectKey) })
		env.Eventually(5*time.Second, "the trash entry ends with the purge", func() bool {
			n, _ := env.Client().DeletedUpload.Query().Where(deletedupload.ID(b.ID)).Count(context.Background())
			return n == 0
		})
	})
	t.Run("an account erasure skips the trash and empties it", func(t *testing.T) {
		userID, key := env.NewUser()
		kept := env.MustUpload(key, "kept.txt", []byte("kept"))
		live := env.MustUpload(key, "live.txt", []byte("live"))
		if deleted, _ := deleteMany(t, env, key, []string{kept.ID}); len(deleted) != 1 {
			t.Fatal("delete kept")
		}
		if _, err := admin.EraseUser(context.Background(), env.Client(), env.App.Resolver, userID); err != nil {
			t.Fatal(err)
		}
		if env.ObjectExists(kept.ObjectKey) || env.ObjectExists(live.ObjectKey) {
			t.Error("erasure left an object for the trash's window")
		}
		if n := env.PendingPurges(); n != 0 {
			t.Errorf("%d purges pending after the erasure", n)
		}
	})
	env.AssertIntact(c, never)
}

// TestTrashOffPurgesAtOnce: with no window (the default), a delete purges
// at once and nothing is restorable.
func TestTrashOffPurgesAtOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	a := env.MustUpload(key, "a.txt", []byte("a"))
	if res := env.DeleteREST(key, a.ID); res.Status != http.StatusOK {
		t.Fatal(res.Status)
	}
	if env.ObjectExists(a.ObjectKey) {
		t.Error("object kept with DELETE_RETENTION=0")
	}
	if _, code := restore(t, env, key, a.ID); code != "NOT_FOUND" {
		t.Errorf("restore with no window: %q", code)
	}
	if got := trash(t, env, key); len(got) != 0 {
		t.Errorf("trash: %+v", got)
	}
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges pending", n)
	}
	if n, _ := env.Client().DeletedUpload.Query().Count(context.Background()); n != 0 {
		t.Errorf("%d trash entries left after the purge", n)
	}
}

// TestRestoreRacesPurger: restores land around the moment the windows of
// many uploads end, while the purger claims them. Each upload ends either
// back with its object (and no purge pending), or gone with its object and
// its restore NOT_FOUND: never a record without its object.
func TestRestoreRacesPurger(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	_, key := env.NewUser()
	const n = 40
	var ups []*ent.Upload
	for i := range n {
		ups = append(ups, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte{byte(i)}))
	}
	if deleted, _ := deleteMany(t, env, key, ids(ups...)); len(deleted) != n {
		t.Fatalf("deleted %d", len(deleted))
	}
	// Every window ends in 300 ms; the restores are spread over 600 ms.
	ctx, end := context.Background(), time.Now().Add(300*time.Millisecond)
	if _, err := env.Client().DeletedUpload.Update().SetPurgeAt(end).Save(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client().ObjectPurge.Update().SetNextAttemptAt(end).Save(ctx); err != nil {
		t.Fatal(err)
	}
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(600)) * time.Millisecond)
			_, codes[i] = restore(t, env, key, u.ID)
		})
	}
	wg.Wait()
	env.Eventually(10*time.Second, "no purge pending", func() bool { return env.PendingPurges() == 0 })
	restored := 0
	for i, u := range ups {
		record, err := env.Client().Upload.Query().Where(upload.ID(u.ID)).Exist(ctx)
		if err != nil {
			t.Fatal(err)
		}
		object := env.ObjectExists(u.ObjectKey)
		switch {
		case codes[i] == "" && record && object:
			restored++
		case codes[i] == "NOT_FOUND" && !record && !object:
		default:
			t.Errorf("upload %d: restore %q, record %v, object %v", i, codes[i], record, object)
		}
	}
	t.Logf("%d of %d restored before the purger took them", restored, n)
	// Creates, deletes, restores and purges, racing on one owner: one chain.
	report, err := audit.Verify(ctx, env.Client(), "")
	if err != nil || len(report.Breaks) != 0 || report.Events < 3*n {
		t.Errorf("audit verify: %+v (%v)", report, err)
	}
}
