package graph_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

const deleteMutation = `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId message } }`

type deletePayload struct {
	DeleteUpload *struct {
		DeletedUploadID string `json:"deletedUploadId"`
		Message         string `json:"message"`
	} `json:"deleteUpload"`
}

// expectError checks that res failed with one error of the given code and
// message, and no data.
func expectError(t *testing.T, res testenv.GraphQLResponse, code, message string) {
	t.Helper()
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %+v, want one %s", res.Errors, code)
	}
	if got := res.Errors[0]; got.Code() != code || got.Message != message {
		t.Errorf("error = %q (%s), want %q (%s)", got.Message, got.Code(), message, code)
	}
	var data map[string]any
	_ = res.Decode(&data)
	for field, v := range data {
		if v != nil {
			t.Errorf("data.%s = %v, want null", field, v)
		}
	}
}

func TestDeleteUploadErrors(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	victim := env.MustUpload(otherKey, "theirs.txt", []byte("theirs"))

	cast := env.NewCast()
	unknownKey, _, _ := apikey.Generate()
	rows := []struct {
		name, apiKey, id, code, message string
	}{
		{"no api key", "", victim.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"blank api key", "   ", victim.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"malformed api key", "abcdef1234567890", victim.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"unknown api key", unknownKey, victim.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"revoked api key", cast.RevokedKey, cast.Mine.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"api key in the wrong case", strings.ToUpper(cast.OwnerKey), cast.Mine.ID, "UNAUTHENTICATED", "Unauthorized"},
		{"blank id", key, "  ", "BAD_USER_INPUT", "The upload id must not be blank"},
		{"unknown id", key, "upl_00000000000000000000000000000000", "NOT_FOUND", "Upload not found"},
		{"malformed id", key, "upl_nope", "NOT_FOUND", "Upload not found"},
		{"another user's upload", key, victim.ID, "NOT_FOUND", "Upload not found"},
		// Ids are ASCII: only ASCII whitespace around one is ignored. These
		// deleted the upload when Unicode's spaces were trimmed.
		{"own id followed by a no-break space", cast.OwnerKey, cast.Mine.ID + "\u00a0", "NOT_FOUND", "Upload not found"},
		{"own id after a no-break space", cast.OwnerKey, "\u00a0" + cast.Mine.ID, "NOT_FOUND", "Upload not found"},
		{"own id followed by an ideographic space", cast.OwnerKey, cast.Mine.ID + "\u3000", "NOT_FOUND", "Upload not found"},
		{"own id followed by a next line (U+0085)", cast.OwnerKey, cast.Mine.ID + "\u0085", "NOT_FOUND", "Upload not found"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			res := env.GraphQL(row.apiKey, deleteMutation, map[string]any{"id": row.id})
			expectError(t, res, row.code, row.message)
			env.AssertIntact(victim, cast.Mine, cast.Victim)
		})
	}
}

func TestDeleteUploadSucceedsOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))

	res := env.GraphQL(key, deleteMutation, map[string]any{"id": up.ID})
	var data deletePayload
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.DeleteUpload == nil {
		t.Fatalf("delete failed: %+v %s", res.Errors, res.Data)
	}
	if got, want := data.DeleteUpload.Message, "Upload "+up.ID+" deleted successfully"; got != want {
		t.Errorf("message = %q, want %q (the REST message)", got, want)
	}
	if data.DeleteUpload.DeletedUploadID != up.ID {
		t.Errorf("deletedUploadId = %q", data.DeleteUpload.DeletedUploadID)
	}
	if env.ObjectExists(up.ObjectKey) {
		t.Error("object still in the bucket")
	}
	expectError(t, env.GraphQL(key, deleteMutation, map[string]any{"id": up.ID}), "NOT_FOUND", "Upload not found")
}

// TestDeleteUploadIgnoresASCIISpace: ASCII whitespace around an id, as a
// form or a JSON string may carry it, is not part of the id.
func TestDeleteUploadIgnoresASCIISpace(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	res := env.GraphQL(key, deleteMutation, map[string]any{"id": " \t" + up.ID + "\r\n"})
	var data deletePayload
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.DeleteUpload == nil || data.DeleteUpload.DeletedUploadID != up.ID {
		t.Fatalf("delete failed: %+v %s", res.Errors, res.Data)
	}
}

func TestDatabaseFailureIsInternal(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	up := env.MustUpload(key, "a.txt", []byte("a"))
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE object_purges"); err != nil {
		t.Fatal(err)
	}
	res := env.GraphQL(key, deleteMutation, map[string]any{"id": up.ID})
	expectError(t, res, "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
	if _, err := env.Client().Upload.Get(context.Background(), up.ID); err != nil {
		t.Errorf("record lost: %v", err)
	}
}

// TestObjectKeysAreNotShared: the database holds each object key once, so
// that deleting a record may delete its object without asking whether
// another record still uses it: a second record of a key is refused, and
// the object goes with its one record.
func TestObjectKeysAreNotShared(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	first := env.MustUpload(key, "a.txt", []byte("mine alone"))
	_, err := env.Client().Upload.Create().
		SetOwnerID(userID).SetFilename("copy.txt").SetContentType("text/plain").SetSize(first.Size).
		SetStatus(upload.StatusCOMPLETED).SetBucket(first.Bucket).SetObjectKey(first.ObjectKey).
		Save(context.Background())
	if !ent.IsConstraintError(err) {
		t.Fatalf("a second record of the key: %v, want a constraint error", err)
	}
	if res := env.DeleteREST(key, first.ID); res.Status != 200 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if env.ObjectExists(first.ObjectKey) {
		t.Error("object kept after its record was deleted")
	}
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges left pending", n)
	}
}

func TestQueriesSeeOnlyOwnUploads(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	otherID, otherKey := env.NewUser()
	mine := env.MustUpload(key, "mine.txt", []byte("mine"))
	theirs := env.MustUpload(otherKey, "theirs.txt", []byte("theirs"))

	t.Run("viewer needs a key", func(t *testing.T) {
		expectError(t, env.GraphQL("", `{ viewer { id } }`, nil), "UNAUTHENTICATED", "Unauthorized")
	})
	t.Run("Authorization: Bearer", func(t *testing.T) {
		body := strings.NewReader(`{"query":"{ viewer { id } }"}`)
		h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + key}}
		res := env.Do(http.MethodPost, "/graphql", h, body)
		if res.Status != 200 || !strings.Contains(res.Body, userID) {
			t.Errorf("got %d %s", res.Status, res.Body)
		}
	})
	t.Run("upload(id) is null for another user's upload, like a missing one", func(t *testing.T) {
		for _, id := range []string{theirs.ID, "upl_00000000000000000000000000000000", "bogus"} {
			res := env.GraphQL(key, `query($id: ID!) { upload(id: $id) { id } }`, map[string]any{"id": id})
			if len(res.Errors) > 0 || string(res.Data) != `{"upload":null}` {
				t.Errorf("upload(%s) = %s %+v", id, res.Data, res.Errors)
			}
		}
		res := env.GraphQL(key, `query($id: ID!) { upload(id: $id) { id filename } }`, map[string]any{"id": mine.ID})
		if !strings.Contains(string(res.Data), mine.ID) {
			t.Errorf("own upload: %s %+v", res.Data, res.Errors)
		}
	})
	t.Run("node(id) is null for anything not the caller's", func(t *testing.T) {
		for _, id := range []string{theirs.ID, otherID, "upl_00000000000000000000000000000000"} {
			res := env.GraphQL(key, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
			if len(res.Errors) > 0 || string(res.Data) != `{"node":null}` {
				t.Errorf("node(%s) = %s %+v", id, res.Data, res.Errors)
			}
		}
		res := env.GraphQL(key, `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Upload { filename } } }`,
			map[string]any{"ids": []string{mine.ID, theirs.ID, userID}})
		want := `{"nodes":[{"id":"` + mine.ID + `","filename":"mine.txt"},null,{"id":"` + userID + `"}]}`
		if string(res.Data) != want {
			t.Errorf("nodes = %s, want %s", res.Data, want)
		}
	})
}

func TestViewerUploadsConnection(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	env.MustUpload(otherKey, "theirs.txt", []byte("x"))
	var ids []string
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		ids = append(ids, env.MustUpload(key, name, []byte(name)).ID)
	}
	env.S3.SetMode(faultproxy.Refuse)
	failed := env.UploadFile(key, "failed.txt", "text/plain", []byte("lost"))
	env.S3.SetMode(faultproxy.Pass)
	if !strings.Contains(string(failed.Data), `"status":"FAILED"`) {
		t.Fatalf("upload during outage: %s %+v", failed.Data, failed.Errors)
	}

	query := `query($after: Cursor, $where: UploadWhereInput) { viewer { uploads(first: 2, after: $after, where: $where, orderBy: {field: CREATED_AT, direction: ASC}) {
		totalCount pageInfo { hasNextPage endCursor } edges { node { id filename status } } } } }`
	type page struct {
		Viewer struct {
			Uploads struct {
				TotalCount int
				PageInfo   struct {
					HasNextPage bool
					EndCursor   *string
				}
				Edges []struct {
					Node struct{ ID, Filename, Status string }
				}
			}
		}
	}
	var got []string
	var after any
	for {
		res := env.GraphQL(key, query, map[string]any{"after": after, "where": map[string]any{"status": "COMPLETED"}})
		var p page
		if len(res.Errors) > 0 || res.Decode(&p) != nil {
			t.Fatalf("query: %+v %s", res.Errors, res.Data)
		}
		if p.Viewer.Uploads.TotalCount != 3 {
			t.Errorf("totalCount = %d, want 3 completed uploads", p.Viewer.Uploads.TotalCount)
		}
		for _, e := range p.Viewer.Uploads.Edges {
			got = append(got, e.Node.ID)
		}
		if !p.Viewer.Uploads.PageInfo.HasNextPage {
			break
		}
		after = *p.Viewer.Uploads.PageInfo.EndCursor
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("paged through %v, want %v", got, ids)
	}
	res := env.GraphQL(key, `{ viewer { uploads(where: {status: FAILED}) { totalCount edges { node { filename } } } } }`, nil)
	if want := `{"viewer":{"uploads":{"totalCount":1,"edges":[{"node":{"filename":"failed.txt"}}]}}}`; string(res.Data) != want {
		t.Errorf("failed uploads = %s, want %s", res.Data, want)
	}
}

func TestUploadFile(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()

	t.Run("stored and completed", func(t *testing.T) {
		content := bytes.Repeat([]byte("0123456789"), 1000)
		up := env.MustUpload(key, "../../etc/report.csv", content)
		if up.Filename != "report.csv" || up.Size != int64(len(content)) || up.Status != upload.StatusCOMPLETED {
			t.Errorf("record = %+v", up)
		}
		if !env.ObjectExists(up.ObjectKey) {
			t.Error("object not in the bucket")
		}
	})
	t.Run("store failure leaves a FAILED record without an object", func(t *testing.T) {
		env.S3.SetMode(faultproxy.RejectWrites)
		rec := uploadExpectingFailure(t, env, key, []byte("doomed"))
		env.S3.SetMode(faultproxy.Pass)
		if rec.ObjectKey != "" || rec.Bucket != "" {
			t.Errorf("FAILED upload that stored nothing still names object %q/%q", rec.Bucket, rec.ObjectKey)
		}
		if res := env.DeleteREST(key, rec.ID); res.Status != 200 {
			t.Errorf("delete FAILED upload: %d %s", res.Status, res.Body)
		}
		if n := env.PendingPurges(); n != 0 {
			t.Errorf("%d purges scheduled for an upload without an object", n)
		}
	})
	t.Run("S3 down during the upload: FAILED record keeps its key until deleted", func(t *testing.T) {
		env.S3.SetMode(faultproxy.Refuse)
		rec := uploadExpectingFailure(t, env, key, []byte("doomed"))
		env.S3.SetMode(faultproxy.Pass)
		// Nobody could confirm that nothing was stored, so the record keeps
		// the key, and deleting the upload purges whatever may be there.
		if rec.ObjectKey == "" {
			t.Fatal("FAILED upload forgot its key although its cleanup could not reach S3")
		}
		if res := env.DeleteREST(key, rec.ID); res.Status != 200 {
			t.Errorf("delete FAILED upload: %d %s", res.Status, res.Body)
		}
		env.Eventually(5*time.Second, "purge done", func() bool { return env.PendingPurges() == 0 })
	})
	t.Run("over the size limit: clear error, nothing stored", func(t *testing.T) {
		before := len(env.ObjectKeys())
		limit := env.Config.MaxUploadSize
		for _, size := range []int64{limit + 1, limit + 2<<20} {
			res := env.UploadFile(key, "big.bin", "application/octet-stream", make([]byte, size))
			if len(res.Errors) != 1 || res.Errors[0].Code() != "BAD_USER_INPUT" ||
				!strings.Contains(res.Errors[0].Message, "File exceeds the maximum upload size") {
				t.Errorf("size %d: status %d, errors %+v", size, res.Status, res.Errors)
			}
		}
		if n, _ := env.Client().Upload.Query().Where(upload.Filename("big.bin")).Count(context.Background()); n != 0 {
			t.Errorf("%d records created for rejected uploads", n)
		}
		if after := len(env.ObjectKeys()); after != before {
			t.Errorf("objects went from %d to %d", before, after)
		}
	})
	t.Run("needs a key", func(t *testing.T) {
		expectError(t, env.UploadFile("", "a.txt", "text/plain", []byte("a")), "UNAUTHENTICATED", "Unauthorized")
	})
}

// uploadExpectingFailure uploads content, expects a FAILED upload and
// returns its record.
func uploadExpectingFailure(t *testing.T, env *testenv.Env, key string, content []byte) *ent.Upload {
	t.Helper()
	res := env.UploadFile(key, "doomed.bin", "application/octet-stream", content)
	var data struct{ UploadFile testenv.UploadedFile }
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.UploadFile.Status != "FAILED" {
		t.Fatalf("got %+v %s, want a FAILED upload", res.Errors, res.Data)
	}
	rec, err := env.Client().Upload.Get(context.Background(), data.UploadFile.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// fragmentBomb is a small document whose n fragments each spread the next
// one twice.
func fragmentBomb(n int) string {
	var b strings.Builder
	b.WriteString("{ viewer { ...F0 } }\n")
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on User { id ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on User { email }\n", n)
	return b.String()
}

func TestOperationLimits(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLDepthLimit = 4
		c.GraphQLComplexityLimit = 20
	}})
	_, key := env.NewUser()
	// __type: __schema costs half the complexity limit, more than these fields.
	introspection := `{ __type(name: "User") { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } }`

	rows := []struct{ name, query, code string }{
		{"within limits", `{ viewer { uploads(first: 5) { edges { cursor } } } }`, ""},
		{"too deep", `{ viewer { uploads { edges { node { id } } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"too deep through fragments", `{ viewer { ...F } } fragment F on User { uploads { edges { node { id } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		{"too many fields", `{ a: viewer { id email } b: viewer { id email } c: viewer { id email } d: viewer { id email } e: viewer { id email } f: viewer { id email } g: viewer { id email } }`, "FIELD_LIMIT_EXCEEDED"},
		{"too complex: a large page", `{ viewer { uploads(first: 50) { totalCount } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		// Not a complexity error: the page size is what is wrong, and said so.
		{"a page over the maximum", `{ viewer { uploads(first: 100000) { edges { cursor } } } }`, "BAD_USER_INPUT"},
		{"introspection is not counted against depth", introspection, ""},
		{"too many node ids", `{ nodes(ids: [` + strings.Repeat(`"x",`, 30) + `]) { id } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		// Each fragment spreads the next twice: 2^40 fields once expanded.
		// Measured naively (as gqlgen's complexity does) this never ends.
		{"fragments that expand exponentially", fragmentBomb(40), "FIELD_LIMIT_EXCEEDED"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			res := env.GraphQL(key, row.query, nil)
			switch {
			case row.code == "" && len(res.Errors) > 0:
				t.Errorf("rejected: %+v", res.Errors)
			case row.code != "" && (len(res.Errors) != 1 || res.Errors[0].Code() != row.code):
				t.Errorf("errors = %+v, want %s", res.Errors, row.code)
			}
		})
	}

	closed := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.GraphQLIntrospection = false }})
	res := closed.GraphQL("", introspection, nil)
	if len(res.Errors) == 0 {
		t.Errorf("introspection allowed although switched off: %s", res.Data)
	}
}

// TestFailedMultipartUploadAbortedOnDelete: an upload stored in parts that
// failed half-way, and whose clean-up could not reach S3 either, leaves an
// incomplete multipart upload; deleting the upload aborts it.
func TestFailedMultipartUploadAbortedOnDelete(t *testing.T) {
	t.Parallel()
	const partSize = 5 << 20
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.S3PartSize = partSize
		c.MaxUploadSize = 3 * partSize
	}})
	_, key := env.NewUser()
	env.S3.FailWhen(func(r *http.Request) bool {
		q := r.URL.Query()
		return q.Get("partNumber") == "2" || (r.Method == http.MethodDelete && q.Has("uploadId"))
	})
	rec := uploadExpectingFailure(t, env, key, make([]byte, 2*partSize+1))
	env.S3.FailWhen(nil)
	if rec.MultipartUploadID == "" || env.IncompleteMultipartUploads() != 1 {
		t.Fatalf("want the failed multipart upload recorded and incomplete in the bucket; record: %+v", rec)
	}
	if res := env.DeleteREST(key, rec.ID); res.Status != 200 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.Eventually(5*time.Second, "multipart upload aborted", func() bool {
		return env.IncompleteMultipartUploads() == 0 && env.PendingPurges() == 0
	})
}

// TestDeleteWhileUploading: an upload deleted while its bytes are still on
// the way to S3 leaves nothing behind once they arrive, and at no moment is
// its object unknown: a purge that waits out the upload's deadline names
// the key from the delete on.
func TestDeleteWhileUploading(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	putArrived, releasePut := make(chan struct{}), make(chan struct{})
	var release sync.Once
	// Released however the test ends: a failure must not leave the upload
	// (and the package) hanging.
	t.Cleanup(func() { release.Do(func() { close(releasePut) }) })
	var once sync.Once
	env.S3.FailWhen(func(r *http.Request) bool {
		if r.Method == http.MethodPut {
			once.Do(func() { close(putArrived); <-releasePut })
		}
		return false
	})
	result := make(chan testenv.GraphQLResponse, 1)
	go func() { result <- env.UploadFile(key, "slow.txt", "text/plain", []byte("slow")) }()
	<-putArrived

	ctx := context.Background()
	pending, err := env.Client().Upload.Query().Where(upload.StatusEQ(upload.StatusPENDING)).Only(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res := env.DeleteREST(key, pending.ID); res.Status != 200 {
		t.Fatalf("delete of a PENDING upload: %d %s", res.Status, res.Body)
	}
	waiting, err := env.Client().ObjectPurge.Query().Where(objectpurge.ObjectKey(pending.ObjectKey)).Only(ctx)
	if err != nil {
		t.Fatalf("no purge names the object still being stored: %v", err)
	}
	if deadline := pending.CreatedAt.Add(env.Config.UploadTimeout); waiting.NextAttemptAt.Before(deadline) {
		t.Errorf("the purge is due at %s, before the upload's deadline %s", waiting.NextAttemptAt, deadline)
	}

	release.Do(func() { close(releasePut) }) // the object arrives in the bucket
	expectError(t, <-result, "NOT_FOUND", "Upload not found")
	if env.ObjectExists(pending.ObjectKey) {
		t.Error("the late object was not purged when its upload found its record deleted")
	}
	// The waiting purge still runs once due, and finds nothing left.
	if _, err := env.Client().ObjectPurge.Update().SetNextAttemptAt(time.Now().Add(-time.Second)).Save(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.App.Purger.RunOnce(ctx); err != nil || env.PendingPurges() != 0 {
		left, _ := env.Client().ObjectPurge.Query().All(ctx)
		t.Errorf("waiting purge: err %v, %d pending: %v", err, env.PendingPurges(), left)
	}
}

// TestDeletePendingAbortsUnrecordedMultipart: a crash between starting a
// multipart upload and recording its id leaves a PENDING record without the
// id; deleting it still aborts the incomplete upload.
func TestDeletePendingAbortsUnrecordedMultipart(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	userID, key := env.NewUser()
	ctx := context.Background()
	u, err := env.Client().Upload.Create().SetOwnerID(userID).SetFilename("big.bin").SetContentType("application/octet-stream").
		SetSize(1 << 30).SetStatus(upload.StatusPENDING).SetBucket(env.Bucket).SetObjectKey("uploads/" + userID + "/crashed").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Direct.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(env.Bucket), Key: aws.String(u.ObjectKey),
	}); err != nil {
		t.Fatal(err)
	}
	if res := env.DeleteREST(key, u.ID); res.Status != 200 {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if _, err := env.Client().ObjectPurge.Update().SetNextAttemptAt(time.Now().Add(-time.Second)).Save(ctx); err != nil {
		t.Fatal(err)
	}
	if _, purged, err := env.App.Purger.RunOnce(ctx); err != nil || purged != 1 {
		t.Fatalf("RunOnce: %d purged, %v", purged, err)
	}
	if n := env.IncompleteMultipartUploads(); n != 0 {
		t.Errorf("%d incomplete multipart uploads left", n)
	}
}

// TestInternalErrorsStayInternal: a failure of ours (here the database) is
// shown as a generic internal error, never with its detail, and logged.
func TestInternalErrorsStayInternal(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE uploads"); err != nil {
		t.Fatal(err)
	}
	for _, query := range []string{
		`{ viewer { uploads { totalCount } } }`,
		`{ upload(id: "upl_00000000000000000000000000000000") { id } }`,
		`{ node(id: "upl_00000000000000000000000000000000") { id } }`, // an error, not "no such upload"
	} {
		res := env.GraphQL(key, query, nil)
		if len(res.Errors) != 1 || res.Errors[0].Code() != "INTERNAL_SERVER_ERROR" || res.Errors[0].Message != "Internal server error" {
			t.Errorf("%s: %+v", query, res.Errors)
		}
	}
	if !strings.Contains(env.Logs.String(), "uploads") || !strings.Contains(env.Logs.String(), `"level":"ERROR"`) {
		t.Error("the internal error's detail was not logged")
	}
}
