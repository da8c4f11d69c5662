package graph_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestVersionedDeletesLeaveNoVersion: on a bucket with versioning, the
// uploads that deleteUploads, deleteUploadsWhere and the REST delete remove
// leave not one version nor delete marker of their objects (a plain
// DeleteObjects would only add a marker and keep every byte).
func TestVersionedDeletesLeaveNoVersion(t *testing.T) {
	t.Parallel()
	env := testenv.NewVersioned(t, testenv.Options{})
	_, key := env.NewUser()
	ctx := context.Background()
	var uploads []*ent.Upload
	for i := range 5 {
		u := env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("v1"))
		for _, body := range []string{"v2", "v3"} { // two more versions of each
			if err := env.Direct.Put(ctx, u.ObjectKey, strings.NewReader(body), 2, "text/plain", nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := env.Versions(u.ObjectKey); n != 3 {
			t.Fatalf("%d versions of %s stored, want 3", n, u.ObjectKey)
		}
		uploads = append(uploads, u)
	}

	if deleted, _ := deleteMany(t, env, key, ids(uploads[:2]...)); len(deleted) != 2 {
		t.Fatalf("deleteUploads deleted %v", deleted)
	}
	if res := env.DeleteREST(key, uploads[2].ID); res.Status != 200 {
		t.Fatalf("REST delete: %d %s", res.Status, res.Body)
	}
	if got := deleteWhere(t, env, key, map[string]any{}, false); got.DeletedCount != 2 {
		t.Fatalf("deleteUploadsWhere deleted %d, want 2", got.DeletedCount)
	}
	env.Eventually(10*time.Second, "no purge pending", func() bool { return env.PendingPurges() == 0 })
	for i, u := range uploads {
		if n := env.Versions(u.ObjectKey); n != 0 {
			t.Errorf("upload %d (%s): %d versions or delete markers left, want none", i, u.ObjectKey, n)
		}
	}
}
