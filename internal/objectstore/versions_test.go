package objectstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestVersionedDeletes: on a versioned bucket, in the default run too (on
// gofakes3's in-memory backend), a batch delete (DeleteKeys) and a single
// one (Discard) remove every version of each object; with
// S3_DELETE_MARKER_ONLY they only add a delete marker and keep the
// versions.
func TestVersionedDeletes(t *testing.T) {
	t.Parallel()
	for _, markerOnly := range []bool{false, true} {
		name := "every version"
		if markerOnly {
			name = "marker only"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := testenv.NewVersioned(t, testenv.Options{Configure: func(c *config.Config) { c.S3DeleteMarkerOnly = markerOnly }})
			ctx := context.Background()
			keys := []string{"a/one", "a/two", "a/three"}
			for _, key := range keys {
				for _, body := range []string{"v1", "v2", "v3"} {
					if err := env.App.Store.Put(ctx, key, strings.NewReader(body), 2, "text/plain", noMultipart(t)); err != nil {
						t.Fatal(err)
					}
				}
				if n := env.Versions(key); n != 3 {
					t.Fatalf("%s: %d versions stored, want 3", key, n)
				}
			}
			if failed := env.App.Store.DeleteKeys(ctx, env.Bucket, keys[:2]); len(failed) != 0 {
				t.Fatalf("DeleteKeys failed: %v", failed)
			}
			if err := env.App.Store.Discard(ctx, env.Bucket, keys[2], ""); err != nil {
				t.Fatal(err)
			}
			want := 0
			if markerOnly {
				want = 4 // three versions and a marker
			}
			for _, key := range keys {
				if env.ObjectExists(key) {
					t.Errorf("%s still readable", key)
				}
				if n := env.Versions(key); n != want {
					t.Errorf("%s: %d versions and markers left, want %d", key, n, want)
				}
			}
		})
	}
}
