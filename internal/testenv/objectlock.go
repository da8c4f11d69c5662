package testenv

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/internal/objectstore"
)

// NewObjectLocked starts a service, as New does, whose bucket was created
// with S3 Object Lock (and so versioning) on the server of TEST_S3_ENDPOINT.
// Without one, or on a server that refuses such a bucket, the test is
// skipped, unless TEST_S3_OBJECT_LOCK=1 (.ci/run sets it for MinIO), which
// fails it: the proof that holds reach the bucket must not vanish from CI.
func NewObjectLocked(t testing.TB, opts Options) *Env {
	t.Helper()
	mustLock := os.Getenv("TEST_S3_OBJECT_LOCK") == "1"
	if os.Getenv("TEST_S3_ENDPOINT") == "" {
		if mustLock {
			t.Fatal("TEST_S3_OBJECT_LOCK=1 but no TEST_S3_ENDPOINT: no S3 server with Object Lock to test against")
		}
		t.Skip("no S3 server with Object Lock (TEST_S3_ENDPOINT); .ci/run runs this test on MinIO")
	}
	endpoint, creds := s3Server(t)
	var refused error
	env := newOnBucket(t, opts, endpoint, creds, func(s *objectstore.Store, ctx context.Context) error {
		_, refused = s.Client().CreateBucket(ctx, &s3.CreateBucketInput{
			Bucket:                     aws.String(s.Bucket()),
			ObjectLockEnabledForBucket: aws.Bool(true),
		})
		if refused != nil {
			return s.EnsureBucket(ctx) // skipped below; the service still needs a bucket to stop cleanly
		}
		return nil
	})
	if refused == nil {
		locked, err := env.Direct.ObjectLockEnabled(context.Background(), env.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		if !locked {
			refused = errNoLock
		}
	}
	switch {
	case refused != nil && mustLock:
		t.Fatalf("create a bucket with Object Lock: %v", refused)
	case refused != nil:
		t.Skipf("this S3 server has no Object Lock (%v); .ci/run runs this test on MinIO", refused)
	}
	return env
}

var errNoLock = errors.New("the bucket was created, but without Object Lock")
