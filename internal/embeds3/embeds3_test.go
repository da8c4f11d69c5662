package embeds3_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/objectstore"
)

const bucket = "uploads"

// childDirEnv makes the test binary run an embedded server over the named
// directory instead of the tests, so that a test can SIGKILL a real server
// process mid-upload.
const childDirEnv = "EMBEDS3_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		srv, err := embeds3.Start(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(srv.URL)
		select {} // until killed
	}
	os.Exit(m.Run())
}

// Hundreds of PUTs whose client goes away mid-body leave nothing that a
// listing, a HEAD or a fresh server over the same directory can see, and
// never break a listing.
func TestAbortedUploadsLeaveNothingVisible(t *testing.T) {
	t.Parallel()
	const uploads, declared, sent = 300, 64 << 10, 20_011
	dir := t.TempDir()
	srv := start(t, dir)
	client := newClient(t, srv.URL)
	createBucket(t, client)
	put(t, client, "kept", "a complete object")

	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			// Half of the clients half-close and wait for the answer, so that
			// at least those uploads are settled before the listing below;
			// the others drop the connection at once.
			abortedPut(t, srv.URL, fmt.Sprintf("aborted/%03d", i), declared, sent, i%2 == 0)
		})
	}
	wg.Wait()

	assertOnlyKept(t, client)
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close waited for every request: whatever the aborted uploads left is
	// now on disk, and a fresh server over the directory must not show it.
	srv = start(t, dir)
	assertOnlyKept(t, newClient(t, srv.URL))
	assertNoPartialBody(t, dir)
}

// A server killed with SIGKILL while uploads stream in (single PUTs and a
// multipart upload) leaves nothing visible: a fresh server over the same
// directory lists cleanly, the complete object is intact, and no partial
// body is left on disk.
func TestSIGKILLMidUploadLeavesNothingVisible(t *testing.T) {
	t.Parallel()
	const uploads, declared, sent = 20, 1 << 20, 300_007
	dir := t.TempDir()
	childURL := startChild(t, dir)
	client := newClient(t, childURL)
	createBucket(t, client)
	put(t, client, "kept", "a complete object")

	ctx := context.Background()
	mpu, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("multipart")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(bucket), Key: aws.String("multipart"), UploadId: mpu.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(bytes.Repeat([]byte("p"), 5<<20)),
	}); err != nil {
		t.Fatal(err)
	}

	// Each connection stays open with part of its body sent; the kill comes
	// once the server has written one of them whole somewhere on disk.
	conns := make([]net.Conn, uploads)
	for i := range conns {
		if conns[i], err = startPut(childURL, fmt.Sprintf("killed/%02d", i), declared, sent); err != nil {
			t.Fatal(err)
		}
	}
	waitForPartialBody(t, dir, sent)
	killChild(t)
	for _, c := range conns {
		_ = c.Close()
	}

	srv := start(t, dir)
	client = newClient(t, srv.URL)
	assertOnlyKept(t, client)
	assertNoPartialBody(t, dir)
	// gofakes3 keeps multipart uploads in memory: they die with the process
	// (it answers NoSuchUpload for a bucket that has none).
	uploadsLeft, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
		uploadsLeft, err = &s3.ListMultipartUploadsOutput{}, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := len(uploadsLeft.Uploads); n != 0 {
		t.Errorf("multipart uploads after restart: %d, want 0", n)
	}
}

// A data directory written by earlier versions (gofakes3's s3afero backend)
// keeps its objects, and the bodies s3afero left without metadata when an
// upload was cut off are neither listed nor kept; nor is a file without
// metadata that appears while the server runs.
func TestS3aferoDataKeptAndItsLeftoversDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
	if err != nil {
		t.Fatal(err)
	}
	oldServer := httptest.NewServer(gofakes3.New(old).Server())
	client := newClient(t, oldServer.URL)
	createBucket(t, client)
	put(t, client, "kept", "a complete object")
	oldServer.Close()
	leftover := filepath.Join(dir, "buckets", bucket, "aborted", "000")
	writePartialBody(t, leftover)

	srv := start(t, dir)
	client = newClient(t, srv.URL)
	assertOnlyKept(t, client)
	head, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(head.ETag), fmt.Sprintf(`"%x"`, md5.Sum([]byte("a complete object"))); got != want {
		t.Errorf("ETag %s, want %s", got, want)
	}
	assertNoPartialBody(t, dir)

	writePartialBody(t, leftover)
	assertOnlyKept(t, client)
}

func writePartialBody(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, bytes.Repeat([]byte{partialByte}, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Deleted objects leave no file behind, whether deleted alone, several in
// one DeleteObjects, or deleted when already gone: once the server is
// closed, the directory holds the kept object's data and metadata and
// nothing else (a delete takes the files out of sight, answers, and frees
// their space after; see detachLocked).
func TestDeletesLeaveNoFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv := start(t, dir)
	client := newClient(t, srv.URL)
	createBucket(t, client)
	put(t, client, "kept/object", "stays")
	withKept := filesUnder(t, dir)
	var keys []types.ObjectIdentifier
	for i := range 40 {
		key := fmt.Sprintf("gone/%02d", i)
		put(t, client, key, strings.Repeat("body ", 1000))
		keys = append(keys, types.ObjectIdentifier{Key: aws.String(key)})
	}
	put(t, client, "alone", "deleted by itself")

	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("alone")}); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, types.ObjectIdentifier{Key: aws.String("never/was")}, types.ObjectIdentifier{Key: aws.String("alone")})
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: keys}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) != 0 || len(out.Deleted) != len(keys) {
		t.Fatalf("DeleteObjects of %d keys: %d deleted, errors %v", len(keys), len(out.Deleted), out.Errors)
	}
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "kept/object" {
		t.Errorf("listing after the deletes: %d objects, want only kept/object", len(list.Contents))
	}
	// The files' space is freed after the answers, by the time Close returns.
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := filesUnder(t, dir); !slices.Equal(left, withKept) {
		t.Errorf("files after the deletes:\n%v\nwant those there were with only kept/object stored:\n%v", left, withKept)
	}
}

// A delete that cannot take the object's files out of sight (its staging
// directory removed from under it) fails, and the object stays, whole: it
// is never reported deleted while still there.
func TestDeleteWithoutStagingFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, dir := newBucket(t)
	put(t, client, "stays", "still here")
	if err := os.RemoveAll(filepath.Join(dir, ".staging")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("stays")}); err == nil {
		t.Error("DeleteObject succeeded without staging")
	}
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("stays")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 0 || len(out.Errors) != 1 {
		t.Errorf("DeleteObjects without staging: %d deleted, %d errors; want the key's error", len(out.Deleted), len(out.Errors))
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("stays")})
	if err != nil {
		t.Fatalf("the object is gone after failed deletes: %v", err)
	}
	defer got.Body.Close()
	if body, err := io.ReadAll(got.Body); err != nil || string(body) != "still here" {
		t.Errorf("the object reads back %q, %v", body, err)
	}
}

// filesUnder lists the regular files under dir, by path relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		names = append(names, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func start(t *testing.T, dir string) *embeds3.Server {
	t.Helper()
	srv, err := embeds3.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

func newClient(t *testing.T, endpoint string) *s3.Client {
	t.Helper()
	client, err := objectstore.NewClient(context.Background(), objectstore.Config{
		Bucket: bucket, Region: "us-east-1", Endpoint: endpoint, ForcePathStyle: true,
		Credentials: objectstore.StaticCredentials(embeds3.AccessKeyID, embeds3.SecretAccessKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func createBucket(t *testing.T, client *s3.Client) {
	t.Helper()
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, client *s3.Client, key, body string) {
	t.Helper()
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
}

// assertOnlyKept checks what reconcile and the purger rely on: the listing
// succeeds and shows exactly the complete object, which reads back whole,
// and an aborted key is not found.
func assertOnlyKept(t *testing.T, client *s3.Client) {
	t.Helper()
	ctx := context.Background()
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if !slices.Equal(keys, []string{"kept"}) {
		t.Errorf("listed keys: %d %.5q…, want only [kept]", len(keys), keys)
	}
	got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("kept")})
	if err != nil {
		t.Fatalf("GetObject kept: %v", err)
	}
	body, err := io.ReadAll(got.Body)
	_ = got.Body.Close()
	if err != nil || string(body) != "a complete object" {
		t.Errorf("kept reads %q, %v", body, err)
	}
	for _, key := range []string{"aborted/000", "aborted/001", "killed/00"} {
		_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NotFound" {
			t.Errorf("HeadObject %s: %v, want NotFound", key, err)
		}
	}
}

// abortedPut sends a PUT that declares declared bytes, sends only sent, and
// goes away: with halfClose it closes its sending side and reads the
// server's answer (so the server has finished with the upload), otherwise
// it drops the connection.
func abortedPut(t *testing.T, endpoint, key string, declared, sent int, halfClose bool) {
	conn, err := startPut(endpoint, key, declared, sent)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	if !halfClose {
		return
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Error(err)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // the server may close without an answer: it is done either way
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("PUT %s with a short body: status %d", key, resp.StatusCode)
	}
}

// startPut opens a connection and sends a PUT's headers and the first sent
// bytes of a body declared to be declared bytes long.
func startPut(endpoint, key string, declared, sent int) (net.Conn, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf("PUT /%s/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n",
		bucket, key, u.Host, declared)
	if _, err := io.WriteString(conn, head); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write(bytes.Repeat([]byte{partialByte}, sent)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// partialByte fills every body that is cut off, and nothing else, so that a
// partial body is recognised on disk whatever name and place it was given.
const partialByte = 'x'

// partialBodies returns the sizes of the files under dir that hold a piece
// of a cut-off body.
func partialBodies(t *testing.T, dir string) []int64 {
	t.Helper()
	var sizes []int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		content, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if len(content) > 0 && len(bytes.Trim(content, string(partialByte))) == 0 {
			sizes = append(sizes, int64(len(content)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

func assertNoPartialBody(t *testing.T, dir string) {
	t.Helper()
	if sizes := partialBodies(t, dir); len(sizes) != 0 {
		t.Errorf("%d partial bodies left under the data directory, sizes %v", len(sizes), sizes)
	}
}

// waitForPartialBody waits until the server has written a whole partial
// body of size bytes to disk: an upload is then in the middle of its write.
func waitForPartialBody(t *testing.T, dir string, size int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(partialBodies(t, dir), size) {
		if time.Now().After(deadline) {
			t.Fatalf("the server wrote no partial body of %d bytes", size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var children sync.Map // *testing.T -> *exec.Cmd

// startChild runs an embedded server over dir in a child process and
// returns its URL.
func startChild(t *testing.T, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	children.Store(t, cmd)
	t.Cleanup(func() { killChild(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	childURL := strings.TrimSpace(line)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(childURL) {
		t.Fatalf("child server said %q", line)
	}
	return childURL
}

func killChild(t *testing.T) {
	v, ok := children.LoadAndDelete(t)
	if !ok {
		return
	}
	cmd := v.(*exec.Cmd)
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
}
