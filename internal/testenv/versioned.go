package testenv

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/safedelete/uploads/internal/objectstore"
)

// NewVersioned starts a service, as New does, whose bucket has versioning
// enabled. With TEST_S3_ENDPOINT set, the bucket is on that server, and a
// server without versioning skips the test unless TEST_S3_VERSIONING=1
// (.ci/run sets it for versitygw and MinIO), which fails it. Otherwise the
// bucket is on gofakes3's in-memory backend, which keeps versions (the
// embedded store does not), so that the default go test ./... covers
// versioned buckets too.
func NewVersioned(t testing.TB, opts Options) *Env {
	t.Helper()
	mustVersion := os.Getenv("TEST_S3_VERSIONING") == "1"
	var endpoint string
	var creds aws.CredentialsProvider
	if os.Getenv("TEST_S3_ENDPOINT") != "" {
		endpoint, creds = s3Server(t)
	} else {
		faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
		srv := httptest.NewServer(faker.Server())
		t.Cleanup(srv.Close)
		endpoint, creds = srv.URL, objectstore.StaticCredentials("versioned", "versioned-secret")
		mustVersion = true
	}
	env := newOn(t, opts, endpoint, creds)
	_, err := env.Direct.Client().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(env.Bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	switch {
	case err != nil && mustVersion:
		t.Fatalf("enable versioning: %v", err)
	case err != nil:
		t.Skipf("this S3 server has no versioning (%v); .ci/run runs this test on versitygw and MinIO", err)
	}
	return env
}

// Versions counts the versions and delete markers of exactly key, asking
// S3 directly.
func (e *Env) Versions(key string) int {
	e.t.Helper()
	n := 0
	p := s3.NewListObjectVersionsPaginator(e.Direct.Client(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(e.Bucket), Prefix: aws.String(key),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatalf("list versions: %v", err)
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
