//go:build soak

package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent/upload"
)

// multipartBody is a GraphQL multipart upload of size bytes.
func multipartBody(size int) (body []byte, contentType string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("operations", `{"query":"mutation($f: File!) { uploadFile(file: $f) { id status } }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	part, _ := mw.CreateFormFile("0", "big.bin")
	_, _ = part.Write(bytes.Repeat([]byte{'x'}, size))
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

var errHungUp = errors.New("the client went away")

// abortedUpload sends the first half of an upload's body, then hangs up.
func abortedUpload(baseURL, apiKey string, body []byte, contentType string) {
	half := io.MultiReader(bytes.NewReader(body[:len(body)/2]), iotestErr{})
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/graphql", half)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("x-api-key", apiKey)
	if res, err := httpClient.Do(req); err == nil {
		res.Body.Close()
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errHungUp }

// TestAbortedAndKilledUploads: hundreds of uploads whose clients go away
// mid-body, and multipart uploads in flight while the server is SIGKILLed,
// leave nothing behind once the janitor has settled the uploads the kills
// left PENDING and `reconcile --repair` has run: no object, no multipart
// part, no stuck upload, and reconcile reports no drift.
func TestAbortedAndKilledUploads(t *testing.T) {
	const aborted, kills, uploaders = 300, 3, 6
	srv := newServer(t, append(s3Settings(t), "RATE_LIMIT=0", "UPLOAD_TIMEOUT=3s", "JANITOR_INTERVAL=500ms",
		"PURGE_POLL_INTERVAL=200ms", "PURGE_MAX_BACKOFF=2s", "S3_PART_SIZE=5242880", "MAX_UPLOAD_SIZE=33554432")...)
	srv.start()
	_, key := srv.newUser("flaky@example.com")

	small, smallType := multipartBody(64 << 10)
	var wg sync.WaitGroup
	for range aborted {
		wg.Go(func() { abortedUpload(srv.url(), key, small, smallType) })
	}
	wg.Wait()

	// Multipart uploads (12 MiB: three parts) in flight while the server dies.
	big, bigType := multipartBody(12 << 20)
	var stop atomic.Bool
	var completed atomic.Int64
	for range uploaders {
		wg.Go(func() {
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodPost, srv.url()+"/graphql", bytes.NewReader(big))
				req.Header.Set("Content-Type", bigType)
				req.Header.Set("x-api-key", key)
				res, err := httpClient.Do(req)
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the server is down
					continue
				}
				var out struct {
					Data struct{ UploadFile struct{ Status string } }
				}
				_ = json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				if out.Data.UploadFile.Status == "COMPLETED" {
					completed.Add(1)
				}
			}
		})
	}
	for range kills {
		time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
		srv.kill()
		srv.start()
	}
	stop.Store(true)
	wg.Wait()
	pendingAfterKills := srv.countUploads(upload.StatusEQ(upload.StatusPENDING))

	// The janitor settles what the kills left PENDING once it must have stopped.
	settleStart := time.Now()
	for srv.countUploads(upload.StatusEQ(upload.StatusPENDING)) > 0 && time.Since(settleStart) < 3*time.Minute {
		time.Sleep(500 * time.Millisecond)
	}
	settled := time.Since(settleStart)
	var repair struct {
		OrphanedObjects          []struct{ Queued bool } `json:"orphaned_objects"`
		OrphanedMultipartUploads []struct{ Queued bool } `json:"orphaned_multipart_uploads"`
		MultipartUploadsGone     int                     `json:"multipart_uploads_gone"`
	}
	if err := json.Unmarshal(srv.command("reconcile", "--repair", "--grace", "1s", "--json"), &repair); err != nil {
		t.Fatal(err)
	}
	drainStart := time.Now()
	for srv.pendingPurges() > 0 && time.Since(drainStart) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	var final struct {
		OrphanedObjects          []any `json:"orphaned_objects"`
		MissingObjects           []any `json:"missing_objects"`
		StuckUploads             []any `json:"stuck_uploads"`
		OrphanedMultipartUploads []any `json:"orphaned_multipart_uploads"`
	}
	if err := json.Unmarshal(srv.command("reconcile", "--json"), &final); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	st := readState(t, srv)
	parts, gone := srv.incompleteMultipartUploads(t)
	failed := srv.countUploads(upload.StatusEQ(upload.StatusFAILED))
	t.Logf("FIGURE aborted and killed uploads: %d uploads cut off mid-body, %d multipart uploads (12 MiB) completed while the server was SIGKILLed %d times; "+
		"%d uploads left PENDING by the kills, settled by the janitor in %s (%d FAILED); reconcile --repair found %d orphaned objects and %d orphaned multipart uploads (%d listed but gone); "+
		"afterwards %d orphaned objects, %d records without their object, %d incomplete multipart uploads (and %d listed that the server no longer holds), %d pending purges; "+
		"reconcile: %d orphaned, %d missing, %d stuck, %d orphaned multipart",
		aborted, completed.Load(), kills, pendingAfterKills, settled.Round(time.Second), failed, len(repair.OrphanedObjects), len(repair.OrphanedMultipartUploads), repair.MultipartUploadsGone,
		len(st.orphans()), len(st.lost()), len(parts), len(gone), len(st.purges),
		len(final.OrphanedObjects), len(final.MissingObjects), len(final.StuckUploads), len(final.OrphanedMultipartUploads))
	if len(st.orphans()) > 0 || len(st.lost()) > 0 || len(parts) > 0 || len(st.purges) > 0 || srv.countUploads(upload.StatusEQ(upload.StatusPENDING)) > 0 ||
		len(final.OrphanedObjects)+len(final.MissingObjects)+len(final.StuckUploads)+len(final.OrphanedMultipartUploads) > 0 {
		t.Errorf("something was left behind: orphans %v, lost %v, incomplete multipart uploads %v", first(st.orphans()), first(st.lost()), first(parts))
	}
}

// incompleteMultipartUploads counts the bucket's multipart uploads that were
// neither completed nor aborted: held, those the server still holds (their
// parts answer), and gone, those it only lists. MinIO lists, for up to 24
// hours, an upload whose CompleteMultipartUpload was cut off by a SIGKILL
// although it completed: it holds no part and answers NoSuchUpload, and no
// abort removes it, so it is nothing left behind.
func (s *server) incompleteMultipartUploads(t *testing.T) (held, gone []string) {
	store, closeStore := s.store(t)
	defer closeStore()
	ctx := context.Background()
	out, err := store.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(store.Bucket())})
	if err != nil {
		var apiErr interface{ ErrorCode() string }
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
			return nil, nil // the embedded server's answer when there are none
		}
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		_, err := store.Client().ListParts(ctx, &s3.ListPartsInput{
			Bucket: aws.String(store.Bucket()), Key: u.Key, UploadId: u.UploadId, MaxParts: aws.Int32(1),
		})
		var apiErr interface{ ErrorCode() string }
		switch {
		case err == nil:
			held = append(held, aws.ToString(u.Key))
		case errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload":
			gone = append(gone, aws.ToString(u.Key))
		default:
			t.Fatal(err)
		}
	}
	return held, gone
}
