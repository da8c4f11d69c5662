//go:build soak

package soak

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/objectstore"
)

// s3Settings returns the server's environment for the S3 of this run: the
// embedded server by default, or a fresh bucket on TEST_S3_ENDPOINT.
func s3Settings(t *testing.T) []string {
	endpoint := os.Getenv("TEST_S3_ENDPOINT")
	if endpoint == "" {
		return nil
	}
	bucket := "soak-" + randomHex(6)
	store := s3Store(t, endpoint, bucket)
	if err := store.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return []string{
		"S3_BUCKET=" + bucket, "S3_ENDPOINT=" + endpoint, "S3_FORCE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + os.Getenv("TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("TEST_S3_SECRET_KEY"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func s3Store(t *testing.T, endpoint, bucket string) *objectstore.Store {
	client, err := objectstore.NewClient(context.Background(), objectstore.Config{
		Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true,
		Credentials: objectstore.StaticCredentials(os.Getenv("TEST_S3_ACCESS_KEY"), os.Getenv("TEST_S3_SECRET_KEY")),
	})
	if err != nil {
		t.Fatal(err)
	}
	return objectstore.New(client, bucket, objectstore.Options{})
}

// pendingPurges counts the server's pending purges.
func (s *server) pendingPurges() int {
	return s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.ObjectPurge.Query().Count(ctx)
	})
}

// countUploads counts the server's upload records that match where.
func (s *server) countUploads(where ...predicate.Upload) int {
	return s.count(func(ctx context.Context, client *ent.Client) (int, error) {
		return client.Upload.Query().Where(where...).Count(ctx)
	})
}

// count runs a count on the server's database, opened read-only beside it.
func (s *server) count(query func(context.Context, *ent.Client) (int, error)) int {
	s.t.Helper()
	ctx := context.Background()
	client, err := database.Open(ctx, database.SQLiteURL(filepath.Join(s.dataDir, "uploads.db")+"?mode=ro"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer client.Close()
	n, err := query(ctx, client)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// state is what a stopped server left behind.
type state struct {
	records map[string]string // upload id -> object key ("" when none)
	purges  map[string]bool   // object keys with a pending purge
	objects map[string]bool   // object keys in the bucket
}

// readState reads the database and lists the bucket of a stopped server.
func readState(t *testing.T, s *server) state {
	t.Helper()
	ctx := context.Background()
	client, err := database.Open(ctx, database.SQLiteURL(filepath.Join(s.dataDir, "uploads.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	st := state{records: map[string]string{}, purges: map[string]bool{}, objects: map[string]bool{}}
	uploads, err := client.Upload.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uploads {
		st.records[u.ID] = u.ObjectKey
	}
	purges, err := client.ObjectPurge.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range purges {
		st.purges[p.ObjectKey] = true
	}

	store, closeStore := s.store(t)
	defer closeStore()
	p := s3.NewListObjectsV2Paginator(store.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(store.Bucket())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			st.objects[aws.ToString(o.Key)] = true
		}
	}
	return st
}

// store reaches the bucket of a stopped server: its S3 server's, or the
// embedded one started over its data directory until the returned func.
func (s *server) store(t *testing.T) (*objectstore.Store, func()) {
	t.Helper()
	if endpoint := os.Getenv("TEST_S3_ENDPOINT"); endpoint != "" {
		for _, kv := range s.env {
			if v, ok := strings.CutPrefix(kv, "S3_BUCKET="); ok {
				return s3Store(t, endpoint, v), func() {}
			}
		}
	}
	srv, err := embeds3.Start(filepath.Join(s.dataDir, "s3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_S3_ACCESS_KEY", embeds3.AccessKeyID)
	t.Setenv("TEST_S3_SECRET_KEY", embeds3.SecretAccessKey)
	return s3Store(t, srv.URL, app.EmbeddedBucket), func() { _ = srv.Close(context.Background()) }
}

// orphans are objects that neither a record nor a pending purge knows.
func (st state) orphans() []string {
	known := map[string]bool{}
	for _, key := range st.records {
		known[key] = true
	}
	var out []string
	for key := range st.objects {
		if !known[key] && !st.purges[key] {
			out = append(out, key)
		}
	}
	return out
}

// lost are records whose object is gone.
func (st state) lost() []string {
	var out []string
	for id, key := range st.records {
		if key != "" && !st.objects[key] {
			out = append(out, id)
		}
	}
	return out
}
