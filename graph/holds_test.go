package graph_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/hold"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/testenv"
)

const (
	heldOneMutation   = `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`
	heldManyMutation  = `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds notFoundIds heldIds } }`
	heldWhereMutation = `mutation { deleteUploadsWhere(where: {}) { deletedCount matchedCount hasMore heldCount } }`
	heldBody          = `{"error":"Upload is under legal hold"}`
)

// placeHold holds an upload (or, with uploadID empty, the user) as the CLI does.
func placeHold(t *testing.T, env *testenv.Env, uploadID, userID string, until time.Time) *ent.Hold {
	t.Helper()
	h, err := holds.Place(context.Background(), env.Client(), holds.Spec{
		UploadID: uploadID, UserID: userID, Reason: "litigation 42", Until: until, Actor: audit.CLI,
	}, nil)
	if err != nil {
		t.Fatalf("place hold: %v", err)
	}
	return h
}

func releaseHold(t *testing.T, env *testenv.Env, h *ent.Hold) {
	t.Helper()
	if _, err := holds.Release(context.Background(), env.Client(), h.ID, audit.CLI, "", nil); err != nil {
		t.Fatalf("release hold: %v", err)
	}
}

func stored(env *testenv.Env, uploadID string) bool {
	return env.Client().Upload.Query().Where(upload.ID(uploadID)).ExistX(context.Background())
}

// TestHeldUploadSurvivesEveryDelete: each caller's delete path refuses a
// held upload in its own words, deletes the rest, and deletes it once the
// hold is released.
func TestHeldUploadSurvivesEveryDelete(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	held := env.MustUpload(key, "held.txt", []byte("evidence"))
	free := env.MustUpload(key, "free.txt", []byte("nothing"))
	h := placeHold(t, env, held.ID, "", time.Time{})

	res := env.DeleteREST(key, held.ID)
	if res.Status != 409 || res.Body != heldBody {
		t.Errorf("REST delete of a held upload: %d %s, want 409 %s", res.Status, res.Body, heldBody)
	}
	gql := env.GraphQL(key, heldOneMutation, map[string]any{"id": held.ID})
	if len(gql.Errors) != 1 || gql.Errors[0].Code() != "HELD" || gql.Errors[0].Message != "Upload is under legal hold" {
		t.Errorf("deleteUpload of a held upload: %+v, want HELD", gql.Errors)
	}
	missing := "upl_00000000000000000000000000000000"
	gql = env.GraphQL(key, heldManyMutation, map[string]any{"ids": []string{held.ID, free.ID, missing}})
	var many struct {
		DeleteUploads struct{ DeletedUploadIds, NotFoundIds, HeldIds []string }
	}
	if err := gql.Decode(&many); err != nil || len(gql.Errors) > 0 {
		t.Fatalf("deleteUploads: %v %+v", err, gql.Errors)
	}
	if got := many.DeleteUploads; !equal(got.DeletedUploadIds, free.ID) || !equal(got.HeldIds, held.ID) || !equal(got.NotFoundIds, missing) {
		t.Errorf("deleteUploads: %+v, want deleted [free], held [held], not found [missing]", got)
	}
	env.MustUpload(key, "other.txt", []byte("other"))
	where := whereDelete(t, env, key)
	if where.DeletedCount != 1 || where.HeldCount != 1 || where.MatchedCount != 2 || where.HasMore {
		t.Errorf("deleteUploadsWhere: %+v, want 1 deleted, 1 held of 2, no more", where)
	}
	if !stored(env, held.ID) || !env.ObjectExists(held.ObjectKey) {
		t.Fatal("the held upload is gone")
	}

	releaseHold(t, env, h)
	if res := env.DeleteREST(key, held.ID); res.Status != 200 {
		t.Errorf("REST delete after release: %d %s", res.Status, res.Body)
	}
}

type wherePayload struct {
	DeletedCount, MatchedCount, HeldCount int
	HasMore                               bool
}

func whereDelete(t *testing.T, env *testenv.Env, key string) wherePayload {
	t.Helper()
	gql := env.GraphQL(key, heldWhereMutation, nil)
	var data struct{ DeleteUploadsWhere wherePayload }
	if err := gql.Decode(&data); err != nil || len(gql.Errors) > 0 {
		t.Fatalf("deleteUploadsWhere: %v %+v", err, gql.Errors)
	}
	return data.DeleteUploadsWhere
}

func equal(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestUserHoldKeepsPresentAndFutureUploads: a hold on a user keeps the
// uploads they had and those they add later, from every path; the janitor
// skips them; once it lapses, they can go.
func TestUserHoldKeepsPresentAndFutureUploads(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, key := env.NewUser()
	before := env.MustUpload(key, "before.txt", []byte("a"))
	until := time.Now().Add(3 * time.Second)
	placeHold(t, env, "", userID, until)
	after := env.MustUpload(key, "after.txt", []byte("b"))

	for _, u := range []*ent.Upload{before, after} {
		if res := env.DeleteREST(key, u.ID); res.Status != 409 || res.Body != heldBody {
			t.Errorf("REST delete of %s under a user hold: %d %s", u.Filename, res.Status, res.Body)
		}
	}
	if where := whereDelete(t, env, key); where.DeletedCount != 0 || where.HeldCount != 2 {
		t.Errorf("deleteUploadsWhere under a user hold: %+v", where)
	}
	// The janitor's expiry of FAILED uploads goes through the same core.
	deleted, err := env.App.Resolver.DeleteOwned(context.Background(), audit.Janitor, userID, []string{before.ID, after.ID})
	if err != nil || len(deleted) != 0 {
		t.Errorf("the janitor's delete under a user hold deleted %v (%v)", deleted, err)
	}
	started := startJob(t, env, key, map[string]any{}, false)
	runJobs(t, env)
	job := jobNode(t, env, key, started.ID)
	if job.HeldCount != 2 || job.DeletedCount != 0 || job.Status != "SUCCEEDED" {
		t.Errorf("deletion job under a user hold: %+v, want SUCCEEDED with heldCount 2", job)
	}
	if !stored(env, before.ID) || !stored(env, after.ID) {
		t.Fatal("a held upload is gone")
	}

	// The hold lapses by itself at until.
	env.Eventually(10*time.Second, "the lapsed hold to stop keeping the upload", func() bool {
		return env.DeleteREST(key, before.ID).Status == 200
	})
	if where := whereDelete(t, env, key); where.DeletedCount != 1 || where.HeldCount != 0 {
		t.Errorf("deleteUploadsWhere after the hold lapsed: %+v", where)
	}
}

// TestHeldUploadStaysInTrash: a hold placed on an upload in the trash
// keeps it there, restorable, past its window; purgeUpload is refused;
// released, it goes at the end of its window.
func TestHeldUploadStaysInTrash(t *testing.T) {
	t.Parallel()
	const window = 2 * time.Second
	env := testenv.New(t, withTrash(window))
	ctx := context.Background()
	_, key := env.NewUser()
	u := env.MustUpload(key, "trashed.txt", []byte("evidence"))
	if res := env.DeleteREST(key, u.ID); res.Status != 200 {
		t.Fatalf("delete: %d", res.Status)
	}
	h := placeHold(t, env, u.ID, "", time.Time{})
	gql := env.GraphQL(key, purgeMutation, map[string]any{"id": u.ID})
	if len(gql.Errors) != 1 || gql.Errors[0].Code() != "HELD" {
		t.Errorf("purgeUpload of a held upload: %+v, want HELD", gql.Errors)
	}
	if _, err := env.App.Resolver.PurgeTrash(ctx, u.OwnerID); err != nil {
		t.Fatal(err)
	}
	// Its window closes; the purger and the janitor, run now, leave it.
	entry := env.Client().DeletedUpload.Query().Where(deletedupload.ID(u.ID)).OnlyX(ctx)
	env.Eventually(2*window, "the restore window to close", func() bool { return time.Now().After(entry.PurgeAt) })
	if _, _, err := env.App.Purger.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.App.Janitor.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if !env.ObjectExists(u.ObjectKey) || len(trash(t, env, key)) != 1 {
		t.Fatal("the held upload left the trash")
	}
	if gql := env.GraphQL(key, restoreMutation, map[string]any{"id": u.ID}); len(gql.Errors) > 0 {
		t.Fatalf("restore of a held upload past its window: %+v", gql.Errors)
	}
	// Back, it is held as any upload.
	if res := env.DeleteREST(key, u.ID); res.Status != 409 {
		t.Errorf("delete of the restored held upload: %d", res.Status)
	}
	releaseHold(t, env, h)
	if res := env.DeleteREST(key, u.ID); res.Status != 200 {
		t.Fatalf("delete after release: %d", res.Status)
	}
	// Held again in the trash, then released past its window: it goes.
	h = placeHold(t, env, u.ID, "", time.Time{})
	entry = env.Client().DeletedUpload.Query().Where(deletedupload.ID(u.ID)).OnlyX(ctx)
	env.Eventually(2*window, "the restore window to close", func() bool { return time.Now().After(entry.PurgeAt) })
	releaseHold(t, env, h)
	env.Eventually(10*time.Second, "the released upload's object to be purged", func() bool {
		_, _, err := env.App.Purger.RunOnce(ctx)
		return err == nil && !env.ObjectExists(u.ObjectKey)
	})
}

// TestHoldRacesDelete: a hold placed while a delete of the same upload
// runs: exactly one of them wins, a hundred times over.
func TestHoldRacesDelete(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	_, key := env.NewUser()
	holdsWon := 0
	defer func() { t.Logf("of 100 races, the hold won %d", holdsWon) }()
	for i := range 100 {
		u := env.MustUpload(key, "race.txt", []byte("x"))
		var wg sync.WaitGroup
		var holdErr error
		var status int
		wg.Go(func() {
			_, holdErr = holds.Place(ctx, env.Client(), holds.Spec{UploadID: u.ID, Reason: "race", Actor: audit.CLI}, nil)
		})
		wg.Go(func() { status = env.DeleteREST(key, u.ID).Status })
		wg.Wait()
		placed := holdErr == nil
		deleted := status == 200
		if holdErr != nil && !errors.Is(holdErr, holds.ErrNotFound) {
			t.Fatalf("race %d: place hold: %v", i, holdErr)
		}
		if placed == deleted {
			t.Fatalf("race %d: hold placed %v, delete answered %d: want exactly one to win", i, placed, status)
		}
		if placed {
			holdsWon++
		}
		if placed != stored(env, u.ID) {
			t.Fatalf("race %d: hold placed %v but the upload stored %v", i, placed, !placed)
		}
	}
}

func (w *scopeWorld) assertNotHeld(t *testing.T, uploadID string) {
	if n := w.env.Client().Hold.Query().Where(hold.UploadID(uploadID)).CountX(context.Background()); n != 0 {
		t.Errorf("a refused placeHold placed %d holds", n)
	}
}

func (w *scopeWorld) newHold(t *testing.T) string {
	return placeHold(t, w.env, w.newUpload(t), "", time.Time{}).ID
}

func (w *scopeWorld) assertHoldActive(t *testing.T, holdID string) {
	if h := w.env.Client().Hold.GetX(context.Background(), holdID); !holds.Active(h, time.Now()) {
		t.Errorf("a refused releaseHold released %s", holdID)
	}
}

const (
	placeHoldMutation   = `mutation($id: ID!, $reason: String!, $until: Time) { placeHold(uploadId: $id, reason: $reason, until: $until) { id uploadId reason placedBy until active } }`
	releaseHoldMutation = `mutation($id: ID!) { releaseHold(id: $id) { id active releasedAt releasedBy } }`
)

type holdResult struct {
	ID       string
	UploadID string
	Reason   string
	PlacedBy string
	Active   bool
}

// TestHoldsGraphQL: a caller holds and releases their own uploads; the
// holds show on the viewer and the upload; someone else's upload or hold
// is NOT_FOUND; bad input changes nothing; a keyed retry places one hold.
func TestHoldsGraphQL(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: withWebhooks})
	_, key := env.NewUser()
	_, strangerKey := env.NewUser()
	u := env.MustUpload(key, "mine.txt", []byte("mine"))
	theirs := env.MustUpload(strangerKey, "theirs.txt", []byte("theirs"))
	// An endpoint that hears only of holds.
	if gql := env.GraphQL(key, `mutation { createWebhookEndpoint(url: "http://127.0.0.1:9/holds", events: [HOLD_PLACED, HOLD_RELEASED]) { secret } }`, nil); len(gql.Errors) > 0 {
		t.Fatalf("createWebhookEndpoint: %+v", gql.Errors)
	}

	res := env.GraphQL(key, placeHoldMutation, map[string]any{"id": u.ID, "reason": "audit 2027"})
	var placed struct{ PlaceHold holdResult }
	if err := res.Decode(&placed); err != nil || len(res.Errors) > 0 {
		t.Fatalf("placeHold: %v %+v", err, res.Errors)
	}
	if h := placed.PlaceHold; h.UploadID != u.ID || h.Reason != "audit 2027" || !h.Active || h.PlacedBy == "" {
		t.Errorf("placeHold answered %+v", h)
	}
	if gql := env.GraphQL(key, heldOneMutation, map[string]any{"id": u.ID}); len(gql.Errors) != 1 || gql.Errors[0].Code() != "HELD" {
		t.Errorf("deleteUpload of the held upload: %+v", gql.Errors)
	}
	res = env.GraphQL(key, `query($id: ID!) { viewer { holds { totalCount edges { node { id } } } } upload(id: $id) { holds { id active } } }`, map[string]any{"id": u.ID})
	var listed struct {
		Viewer struct {
			Holds struct {
				TotalCount int
				Edges      []struct{ Node struct{ ID string } }
			}
		}
		Upload struct{ Holds []holdResult }
	}
	if err := res.Decode(&listed); err != nil || len(res.Errors) > 0 {
		t.Fatalf("holds query: %v %+v", err, res.Errors)
	}
	if listed.Viewer.Holds.TotalCount != 1 || len(listed.Upload.Holds) != 1 || listed.Upload.Holds[0].ID != placed.PlaceHold.ID {
		t.Errorf("viewer.holds and Upload.holds: %+v", listed)
	}

	for _, bad := range []struct {
		name, code string
		vars       map[string]any
	}{
		{"someone else's upload", "NOT_FOUND", map[string]any{"id": theirs.ID, "reason": "x"}},
		{"a malformed id", "NOT_FOUND", map[string]any{"id": "upl_nope", "reason": "x"}},
		{"a blank reason", "BAD_USER_INPUT", map[string]any{"id": u.ID, "reason": "  "}},
		{"an until past", "BAD_USER_INPUT", map[string]any{"id": u.ID, "reason": "x", "until": "2001-01-01T00:00:00Z"}},
	} {
		if gql := env.GraphQL(key, placeHoldMutation, bad.vars); len(gql.Errors) != 1 || gql.Errors[0].Code() != bad.code {
			t.Errorf("placeHold of %s: %+v, want %s", bad.name, gql.Errors, bad.code)
		}
	}
	if n := env.Client().Hold.Query().CountX(context.Background()); n != 1 {
		t.Errorf("refused placeHolds left %d holds, want the 1 placed", n)
	}
	if gql := env.GraphQL(strangerKey, releaseHoldMutation, map[string]any{"id": placed.PlaceHold.ID}); len(gql.Errors) != 1 || gql.Errors[0].Code() != "NOT_FOUND" {
		t.Errorf("releaseHold of someone else's hold: %+v", gql.Errors)
	}
	if gql := env.GraphQL(key, releaseHoldMutation, map[string]any{"id": placed.PlaceHold.ID}); len(gql.Errors) > 0 {
		t.Fatalf("releaseHold: %+v", gql.Errors)
	}
	if gql := env.GraphQL(key, releaseHoldMutation, map[string]any{"id": placed.PlaceHold.ID}); len(gql.Errors) != 1 || gql.Errors[0].Code() != "BAD_USER_INPUT" {
		t.Errorf("releaseHold twice: %+v", gql.Errors)
	}

	// Placing and releasing are in the audit trail and told to webhooks.
	ctx := context.Background()
	for kind, eventType := range map[auditevent.Kind]string{auditevent.KindHOLD_PLACED: "upload.hold_placed", auditevent.KindHOLD_RELEASED: "upload.hold_released"} {
		if n := env.Client().AuditEvent.Query().Where(auditevent.UploadID(u.ID), auditevent.KindEQ(kind)).CountX(ctx); n != 1 {
			t.Errorf("%d %s audit events, want 1", n, kind)
		}
		if n := env.Client().WebhookDelivery.Query().Where(webhookdelivery.UploadID(u.ID), webhookdelivery.EventType(eventType)).CountX(ctx); n != 1 {
			t.Errorf("%d %s webhook deliveries, want 1", n, eventType)
		}
	}

	// A keyed retry answers the same hold, and places no second one.
	vars := map[string]any{"id": u.ID, "reason": "retried"}
	first := keyed(env, key, "hold-1", placeHoldMutation, vars)
	again := keyed(env, key, "hold-1", placeHoldMutation, vars)
	sameAnswer(t, first, again, true)
	if n := env.Client().Hold.Query().Where(hold.Reason("retried")).CountX(context.Background()); n != 1 {
		t.Errorf("a keyed placeHold sent twice placed %d holds", n)
	}
}
