package graph_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

const deleteManyMutation = `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds notFoundIds } }`

type deleteManyResult struct {
	DeleteUploads *struct {
		DeletedUploadIDs []string `json:"deletedUploadIds"`
		NotFoundIDs      []string `json:"notFoundIds"`
	} `json:"deleteUploads"`
}

func deleteMany(t *testing.T, env *testenv.Env, key string, ids []string) (deleted, notFound []string) {
	t.Helper()
	res := env.GraphQL(key, deleteManyMutation, map[string]any{"ids": ids})
	var data deleteManyResult
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.DeleteUploads == nil {
		t.Fatalf("deleteUploads: status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
	}
	return data.DeleteUploads.DeletedUploadIDs, data.DeleteUploads.NotFoundIDs
}

// assertGone fails unless each upload has neither its record nor its
// object, nor a pending purge.
func assertGone(t *testing.T, env *testenv.Env, uploads ...*ent.Upload) {
	t.Helper()
	for _, u := range uploads {
		if exists, _ := env.Client().Upload.Query().Where(upload.ID(u.ID)).Exist(context.Background()); exists {
			t.Errorf("upload %s: record left", u.ID)
		}
		if u.ObjectKey != "" && env.ObjectExists(u.ObjectKey) {
			t.Errorf("upload %s: object left", u.ID)
		}
	}
}

func ids(uploads ...*ent.Upload) []string {
	out := make([]string, len(uploads))
	for i, u := range uploads {
		out[i] = u.ID
	}
	return out
}

// TestDeleteUploadsContract walks deleteUploads' documented cases: input,
// payload, and what is left in the database and the bucket.
func TestDeleteUploadsContract(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	theirs := env.MustUpload(otherKey, "theirs.txt", []byte("theirs"))
	a := env.MustUpload(key, "a.txt", []byte("a"))
	b := env.MustUpload(key, "b.txt", []byte("b"))
	c := env.MustUpload(key, "c.txt", []byte("c"))
	unknown := "upl_00000000000000000000000000000000"

	t.Run("an empty list: an empty result", func(t *testing.T) {
		deleted, notFound := deleteMany(t, env, key, []string{})
		if len(deleted) != 0 || len(notFound) != 0 {
			t.Errorf("got %v %v", deleted, notFound)
		}
	})
	t.Run("more than the limit: nothing deleted", func(t *testing.T) {
		tooMany := []string{a.ID}
		for i := range graph.MaxDeleteIDs {
			tooMany = append(tooMany, fmt.Sprintf("upl_%032x", i))
		}
		res := env.GraphQL(key, deleteManyMutation, map[string]any{"ids": tooMany})
		expectError(t, res, "BAD_USER_INPUT", graph.ErrTooManyIDs.Message)
		if !strings.Contains(res.Errors[0].Message, "1000") {
			t.Errorf("the message does not name the limit: %q", res.Errors[0].Message)
		}
		env.AssertIntact(a)
	})
	t.Run("anonymous", func(t *testing.T) {
		res := env.GraphQL("", deleteManyMutation, map[string]any{"ids": []string{a.ID}})
		expectError(t, res, "UNAUTHENTICATED", "Unauthorized")
		env.AssertIntact(a)
	})
	t.Run("mine, theirs, unknown, malformed, duplicates, blank (reported as given)", func(t *testing.T) {
		deleted, notFound := deleteMany(t, env, key, []string{theirs.ID, b.ID, "nope", a.ID, unknown, b.ID, " ", a.ID, "nope", theirs.ID})
		if want := []string{b.ID, a.ID}; !slices.Equal(deleted, want) {
			t.Errorf("deleted %v, want %v (the order of ids, each once)", deleted, want)
		}
		if want := []string{theirs.ID, "nope", unknown, " "}; !slices.Equal(notFound, want) {
			t.Errorf("not found %v, want %v", notFound, want)
		}
		assertGone(t, env, a, b)
		env.AssertIntact(theirs, c)
	})
	t.Run("already deleted: not found", func(t *testing.T) {
		deleted, notFound := deleteMany(t, env, key, []string{a.ID, c.ID})
		if !slices.Equal(deleted, []string{c.ID}) || !slices.Equal(notFound, []string{a.ID}) {
			t.Errorf("got deleted %v, not found %v", deleted, notFound)
		}
		assertGone(t, env, c)
	})
	t.Run("someone else's, whatever the caller", func(t *testing.T) {
		deleted, notFound := deleteMany(t, env, otherKey, []string{a.ID, theirs.ID})
		if !slices.Equal(deleted, []string{theirs.ID}) || !slices.Equal(notFound, []string{a.ID}) {
			t.Errorf("got deleted %v, not found %v", deleted, notFound)
		}
	})
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges pending after deletes with S3 up", n)
	}
}

// TestDeleteUploadsAllOrNothing: a database failure in the transaction
// deletes none of the selection.
func TestDeleteUploadsAllOrNothing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	a := env.MustUpload(key, "a.txt", []byte("a"))
	b := env.MustUpload(key, "b.txt", []byte("b"))
	// The records' DELETE works, the purge notes' INSERT fails after it.
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE object_purges"); err != nil {
		t.Fatal(err)
	}
	res := env.GraphQL(key, deleteManyMutation, map[string]any{"ids": []string{a.ID, b.ID}})
	expectError(t, res, "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
	env.AssertIntact(a, b)
}

// TestDeleteUploadsConcurrent: overlapping selections and single deletes of
// the same uploads, at once: each upload is deleted exactly once, and
// reported deleted by that call only.
func TestDeleteUploadsConcurrent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	var uploads []*ent.Upload
	for i := range 30 {
		uploads = append(uploads, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("x")))
	}
	all := ids(uploads...)
	var mu sync.Mutex
	reported := map[string]int{}
	report := func(deleted ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range deleted {
			reported[id]++
		}
	}
	var wg sync.WaitGroup
	for _, part := range [][]string{all[:20], all[10:], all} { // every upload in two or three batches
		wg.Go(func() {
			deleted, _ := deleteMany(t, env, key, part)
			report(deleted...)
		})
	}
	for _, id := range all[5:25] { // and a single delete of most
		wg.Go(func() {
			if res := env.DeleteREST(key, id); res.Status == 200 {
				report(id)
			} else if res.Status != 404 {
				t.Errorf("single delete: %d %s", res.Status, res.Body)
			}
		})
	}
	wg.Wait()
	for _, id := range all {
		if reported[id] != 1 {
			t.Errorf("upload %s reported deleted %d times, want once", id, reported[id])
		}
	}
	assertGone(t, env, uploads...)
}

// TestDeleteUploadsS3FailsSomeKeys: the keys S3 reports it could not
// delete keep their purges, and are purged once S3 recovers; the others
// are done at once.
func TestDeleteUploadsS3FailsSomeKeys(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	var uploads []*ent.Upload
	for i := range 10 {
		uploads = append(uploads, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("x")))
	}
	failing := map[string]bool{uploads[2].ObjectKey: true, uploads[7].ObjectKey: true}
	env.S3.FailKeys(func(key string) bool { return failing[key] })
	deleted, _ := deleteMany(t, env, key, ids(uploads...))
	if len(deleted) != len(uploads) {
		t.Fatalf("deleted %d of %d", len(deleted), len(uploads))
	}
	pending, err := env.Client().ObjectPurge.Query().All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range pending {
		left = append(left, p.ObjectKey)
	}
	slices.Sort(left)
	want := []string{uploads[2].ObjectKey, uploads[7].ObjectKey}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("purges left %v, want those of the failed keys %v", left, want)
	}

	env.S3.FailKeys(nil)
	if _, err := env.Client().ObjectPurge.Update().SetNextAttemptAt(time.Now().Add(-time.Second)).Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, purged, err := env.App.Purger.RunOnce(context.Background()); err != nil || purged != 2 {
		t.Errorf("RunOnce: %d purged, %v; want the 2 retried", purged, err)
	}
	assertGone(t, env, uploads...)
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges left", n)
	}
}

const deleteWhereMutation = `mutation($where: UploadWhereInput!, $dryRun: Boolean!) {
  deleteUploadsWhere(where: $where, dryRun: $dryRun) { deletedCount matchedCount hasMore } }`

type whereResult struct {
	DeletedCount, MatchedCount int
	HasMore                    bool
}

func deleteWhere(t *testing.T, env *testenv.Env, key string, where map[string]any, dryRun bool) whereResult {
	t.Helper()
	res := env.GraphQL(key, deleteWhereMutation, map[string]any{"where": where, "dryRun": dryRun})
	var data struct{ DeleteUploadsWhere *whereResult }
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.DeleteUploadsWhere == nil {
		t.Fatalf("deleteUploadsWhere: status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
	}
	return *data.DeleteUploadsWhere
}

// TestDeleteUploadsWhereContract: the filter of viewer.uploads picks the
// caller's uploads to delete, never anyone else's.
func TestDeleteUploadsWhereContract(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	theirs := env.MustUpload(otherKey, "report.pdf", []byte("theirs"))
	report := env.MustUpload(key, "report.pdf", []byte("r"))
	notes := env.MustUpload(key, "notes.txt", []byte("n"))
	env.S3.SetMode(faultproxy.RejectWrites)
	failed := uploadExpectingFailure(t, env, key, []byte("f"))
	env.S3.SetMode(faultproxy.Pass)

	if got := deleteWhere(t, env, key, map[string]any{"status": "FAILED"}, true); got != (whereResult{MatchedCount: 1}) {
		t.Errorf("dry run: %+v, want 1 matched and nothing deleted", got)
	}
	env.AssertIntact(report, notes, failed)

	if got := deleteWhere(t, env, key, map[string]any{"filenameContains": "report"}, false); got != (whereResult{DeletedCount: 1, MatchedCount: 1}) {
		t.Errorf("filenameContains: %+v", got)
	}
	assertGone(t, env, report)
	env.AssertIntact(theirs, notes, failed)

	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := deleteWhere(t, env, key, map[string]any{"createdAtGT": future}, false); got != (whereResult{}) {
		t.Errorf("nothing created in the future: %+v", got)
	}

	// An empty filter inside another is not "every upload": {not: {}}
	// would otherwise delete them all.
	for field, where := range map[string]map[string]any{"not": {"not": map[string]any{}}, "and": {"and": []any{map[string]any{}}}} {
		res := env.GraphQL(key, deleteWhereMutation, map[string]any{"where": where, "dryRun": false})
		expectError(t, res, "BAD_USER_INPUT", "ent: empty predicate UploadWhereInput: field '"+field+"'")
	}
	env.AssertIntact(notes, failed)

	if got := deleteWhere(t, env, key, map[string]any{}, false); got != (whereResult{DeletedCount: 2, MatchedCount: 2}) {
		t.Errorf("where {}: %+v, want the caller's 2 uploads", got)
	}
	assertGone(t, env, notes, failed)
	env.AssertIntact(theirs)
	if n := env.PendingPurges(); n != 0 {
		t.Errorf("%d purges pending", n)
	}
}

// TestDeleteUploadsWhereHasMore: past 10,000 uploads one call deletes
// 10,000 and says there is more; the next call finishes.
func TestDeleteUploadsWhereHasMore(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	ctx := context.Background()
	// Records without objects (FAILED uploads that stored nothing), made directly: fast.
	const total = graph.MaxDeleteWhere + 1
	for done := 0; done < total; done += 1000 {
		var creates []*ent.UploadCreate
		for range min(1000, total-done) {
			creates = append(creates, env.Client().Upload.Create().SetOwnerID(userID).SetFilename("f").
				SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED))
		}
		env.Client().Upload.CreateBulk(creates...).ExecX(ctx)
	}
	if got := deleteWhere(t, env, key, map[string]any{}, false); got != (whereResult{DeletedCount: graph.MaxDeleteWhere, MatchedCount: total, HasMore: true}) {
		t.Errorf("first call: %+v", got)
	}
	if got := deleteWhere(t, env, key, map[string]any{}, false); got != (whereResult{DeletedCount: 1, MatchedCount: 1}) {
		t.Errorf("second call: %+v", got)
	}
	if n := env.Client().Upload.Query().CountX(ctx); n != 0 {
		t.Errorf("%d uploads left", n)
	}
}

// TestDeleteUploadsWhereEveryBatchPurged: a call spanning several batches
// answers only once every batch's objects are gone (a batch's objects are
// removed while the next batch's transaction runs), and each object is
// removed by the call itself, not left to the background purger.
func TestDeleteUploadsWhereEveryBatchPurged(t *testing.T) {
	t.Parallel()
	// A generous inline budget: three batches' removals must fit in it on a
	// loaded machine too (PostgreSQL under a parallel test run once took
	// past testenv's 2 s), and the bug guarded against leaves objects or
	// purges behind whatever the budget.
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true, Configure: func(c *config.Config) {
		c.PurgeInlineTimeout = time.Minute
	}})
	userID, key := env.NewUser()
	ctx := context.Background()
	const total = 2*graph.MaxDeleteIDs + 500
	creates := make([]*ent.UploadCreate, total)
	// The objects are stored by several writers at once: one by one, the
	// embedded server's two fsyncs per object made this the slowest test.
	const writers = 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < total; i += writers {
				objectKey := fmt.Sprintf("uploads/%s/%05d", userID, i)
				if err := env.Direct.Put(ctx, objectKey, strings.NewReader("x"), 1, "text/plain", nil); err != nil {
					t.Error(err)
					return
				}
				creates[i] = env.Client().Upload.Create().SetOwnerID(userID).SetFilename("f").SetContentType("text/plain").
					SetSize(1).SetStatus(upload.StatusCOMPLETED).SetBucket(env.Bucket).SetObjectKey(objectKey)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for part := range slices.Chunk(creates, 1000) {
		env.Client().Upload.CreateBulk(part...).ExecX(ctx)
	}
	if got := deleteWhere(t, env, key, map[string]any{}, false); got != (whereResult{DeletedCount: total, MatchedCount: total}) {
		t.Errorf("where {}: %+v, want all %d deleted", got, total)
	}
	if n, left, pending := env.Client().Upload.Query().CountX(ctx), len(env.ObjectKeys()), env.PendingPurges(); n+left+pending != 0 {
		t.Errorf("when the call answered: %d records, %d objects, %d purges pending", n, left, pending)
	}
}
