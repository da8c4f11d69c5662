package embeds3_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Deleting the last keys under a prefix frees the prefix's name, as on S3:
// it can then be stored as a key of its own, and no listing shows the
// prefix, whether the keys went one by one or in one DeleteObjects. A
// prefix that still has a key keeps its directory.
func TestDeletingAPrefixsLastKeyFreesItsName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		keys  []string // stored, then deleted
		batch bool     // deleted in one DeleteObjects, not one by one
		reuse string   // a prefix of keys, stored as a key after the deletes
	}{
		{name: "one level", keys: []string{"a/b"}, reuse: "a"},
		{name: "two levels", keys: []string{"a/b/c"}, reuse: "a"},
		{name: "the inner level", keys: []string{"a/b/c"}, reuse: "a/b"},
		{name: "several keys one by one", keys: []string{"a/b/1", "a/b/2", "a/c"}, reuse: "a"},
		{name: "several keys in DeleteObjects", keys: []string{"a/b/1", "a/b/2", "a/c"}, batch: true, reuse: "a"},
		{name: "beside a kept key", keys: []string{"kept/gone/key"}, reuse: "kept/gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client, dir := newBucket(t)
			put(t, client, "kept/object", "stays")
			for _, key := range tc.keys {
				put(t, client, key, "deleted")
			}
			deleteKeys(t, client, tc.batch, tc.keys)

			if keys, prefixes := listing(t, client, "/"); len(keys) != 0 || !slices.Equal(prefixes, []string{"kept/"}) {
				t.Errorf("listing by / after the deletes: keys %q, prefixes %q; want no key and only kept/", keys, prefixes)
			}
			if got := dirsUnder(t, bucketDir(dir)); !slices.Equal(got, []string{"kept"}) {
				t.Errorf("directories in the bucket after the deletes: %q, want only kept", got)
			}
			put(t, client, tc.reuse, "reused")
			assertBody(t, client, tc.reuse, "reused")
			assertBody(t, client, "kept/object", "stays")
		})
	}
}

// Deleting every key leaves the bucket and the server's staging in place:
// the bucket is still there, empty, and takes new objects, even after a key
// named like staging went.
func TestDeletingEveryKeyKeepsTheBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, dir := newBucket(t)
	keys := []string{"top", "deep/er/key", ".staging/key"}
	for _, key := range keys {
		put(t, client, key, "deleted")
	}
	deleteKeys(t, client, false, keys)

	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("HeadBucket after deleting every key: %v", err)
	}
	for _, kept := range []string{bucketDir(dir), filepath.Join(dir, ".staging")} {
		if info, err := os.Stat(kept); err != nil || !info.IsDir() {
			t.Errorf("%s after deleting every key: %v", kept, err)
		}
	}
	if keys, _ := listing(t, client, ""); len(keys) != 0 {
		t.Errorf("listing after deleting every key: %q", keys)
	}
	put(t, client, "deep", "new")
	assertBody(t, client, "deep", "new")
}

// A PUT whose key's place holds directories with no file in them (left by
// a delete of an earlier version, or by a crash) stores the object; one
// whose key is a prefix of a stored key still fails, and the stored key
// stays.
func TestPutOverLeftoverDirectories(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, dir := newBucket(t)
	put(t, client, "held/key", "holds held")
	root := bucketDir(dir)
	for _, leftover := range []string{"empty", filepath.Join("nested", "empty", "dirs"), filepath.Join("nested", "siblings")} {
		if err := os.MkdirAll(filepath.Join(root, leftover), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	for _, key := range []string{"empty", "nested"} {
		put(t, client, key, "over a leftover")
		assertBody(t, client, key, "over a leftover")
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("held"), Body: strings.NewReader("over a key"),
	}); err == nil {
		t.Error("PUT of a stored key's prefix succeeded")
	}
	assertBody(t, client, "held/key", "holds held")
}

// PUTs and DELETEs under one prefix at once never take a directory from
// under each other: every PUT succeeds and reads back, and once all keys
// are gone so is the prefix.
func TestConcurrentPutsAndDeletesUnderOnePrefix(t *testing.T) {
	t.Parallel()
	const workers, rounds = 8, 25
	client, dir := newBucket(t)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("shared/%d/%d", w%2, r)
				body := fmt.Sprint("worker ", w)
				if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
				}); err != nil {
					t.Errorf("PUT %s: %v", key, err)
					return
				}
				if _, err := client.DeleteObject(context.Background(), &s3.DeleteObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key),
				}); err != nil {
					t.Errorf("DELETE %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := dirsUnder(t, bucketDir(dir)); len(got) != 0 {
		t.Errorf("directories in the bucket after every key went: %q", got)
	}
	put(t, client, "shared", "reused")
	assertBody(t, client, "shared", "reused")
}

// newBucket starts a server over a new directory, makes the bucket, and
// returns a client and the directory.
func newBucket(t *testing.T) (*s3.Client, string) {
	t.Helper()
	dir := t.TempDir()
	client := newClient(t, start(t, dir).URL)
	createBucket(t, client)
	return client, dir
}

// bucketDir is where a server over dir keeps the bucket's objects.
func bucketDir(dir string) string {
	return filepath.Join(dir, "buckets", bucket)
}

// listing lists the bucket, by delimiter unless it is empty, and returns
// the keys and the common prefixes.
func listing(t *testing.T, client *s3.Client, delimiter string) (keys, prefixes []string) {
	t.Helper()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	list, err := client.ListObjectsV2(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	for _, p := range list.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	return keys, prefixes
}

// deleteKeys deletes keys one by one, or in one DeleteObjects with batch.
func deleteKeys(t *testing.T, client *s3.Client, batch bool, keys []string) {
	t.Helper()
	ctx := context.Background()
	if !batch {
		for _, key := range keys {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
				t.Fatalf("DeleteObject %s: %v", key, err)
			}
		}
		return
	}
	var ids []types.ObjectIdentifier
	for _, key := range keys {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(key)})
	}
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 0 || len(out.Deleted) != len(keys) {
		t.Fatalf("DeleteObjects of %d keys: %d deleted, errors %v", len(keys), len(out.Deleted), out.Errors)
	}
}

func assertBody(t *testing.T, client *s3.Client, key, want string) {
	t.Helper()
	got, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer got.Body.Close()
	if body, err := io.ReadAll(got.Body); err != nil || string(body) != want {
		t.Errorf("%s reads %q, %v; want %q", key, body, err, want)
	}
}

// dirsUnder lists the directories below root, by path relative to it.
func dirsUnder(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || name == root {
			return err
		}
		rel, err := filepath.Rel(root, name)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A symbolic link an operator put in the bucket's directory is not a
// directory a delete or a PUT may clear: deleting the last key reached
// through it keeps the link (and the keys beside it), and a PUT of the
// link's own name is refused as a prefix of other keys.
func TestSymbolicLinksAreNeverCleared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, dir := newBucket(t)
	put(t, client, "real/kept", "kept")
	put(t, client, "real/gone", "gone")
	link := filepath.Join(bucketDir(dir), "link")
	if err := os.Symlink(filepath.Join(bucketDir(dir), "real"), link); err != nil {
		t.Fatal(err)
	}

	deleteKeys(t, client, false, []string{"link/gone"})
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("the link went with the last key deleted through it: %v", err)
	}
	assertBody(t, client, "real/kept", "kept")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("link"), Body: strings.NewReader("over a link"),
	}); err == nil {
		t.Error("PUT over a link to a directory of keys succeeded")
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link is no longer a link: %v, %v", info, err)
	}
	assertBody(t, client, "real/kept", "kept")
}
