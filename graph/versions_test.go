package graph_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/testenv"
)

// versionedEnv starts a service whose bucket keeps versions. With
// TEST_S3_ENDPOINT set, on that server (TEST_S3_VERSIONING=1 says it must
// support versioning; .ci/run runs versitygw and MinIO so). Otherwise on
// gofakes3's in-memory backend, which keeps versions as the embedded
// store does not, so that the default go test ./... covers versioned
// buckets too.
func versionedEnv(t *testing.T) *testenv.Env {
	t.Helper()
	mustVersion := os.Getenv("TEST_S3_VERSIONING") == "1"
	if os.Getenv("TEST_S3_ENDPOINT") == "" {
		faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
		srv := httptest.NewServer(faker.Server())
		t.Cleanup(srv.Close)
		t.Setenv("TEST_S3_ENDPOINT", srv.URL)
		t.Setenv("TEST_S3_ACCESS_KEY", "versioned")
		t.Setenv("TEST_S3_SECRET_KEY", "versioned-secret")
		mustVersion = true
	}
	env := testenv.New(t, testenv.Options{})
	_, err := env.Direct.Client().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(env.Bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	switch {
	case err != nil && mustVersion:
		t.Fatalf("enable versioning: %v", err)
	case err != nil:
		t.Skipf("this S3 server has no versioning (%v); unset TEST_S3_ENDPOINT to run on gofakes3's", err)
	}
	return env
}

// versionsOf counts the versions and delete markers of exactly key.
func versionsOf(t *testing.T, env *testenv.Env, key string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectVersionsPaginator(env.Direct.Client(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(env.Bucket), Prefix: aws.String(key),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list versions: %v", err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) == key {
				n++
			}
		}
		for _, m := range page.DeleteMarkers {
			if aws.ToString(m.Key) == key {
				n++
			}
		}
	}
	return n
}

// TestVersionedDeletesLeaveNoVersion: on a bucket with versioning, the
// uploads that deleteUploads, deleteUploadsWhere and the REST delete remove
// leave not one version nor delete marker of their objects (a plain
// DeleteObjects would only add a marker and keep every byte).
func TestVersionedDeletesLeaveNoVersion(t *testing.T) {
	env := versionedEnv(t)
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
		if n := versionsOf(t, env, u.ObjectKey); n != 3 {
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
		if n := versionsOf(t, env, u.ObjectKey); n != 0 {
			t.Errorf("upload %d (%s): %d versions or delete markers left, want none", i, u.ObjectKey, n)
		}
	}
}
