package graph_test

// Edges a caller can reach and that gremlins found untested: limits at
// exactly their value, pageInfo, node(id) of what the caller owns, a content
// type kept, an endpoint's deliveries bounded by first, and the trash
// emptied past one batch.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestLimitsAtTheirValue: exactly the documented limit is allowed.
func TestLimitsAtTheirValue(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()

	thousand := make([]string, graph.MaxDeleteIDs)
	for i := range thousand {
		thousand[i] = fmt.Sprintf("upl_none%d", i)
	}
	if deleted, notFound := deleteMany(t, env, key, thousand); len(deleted) != 0 || len(notFound) != graph.MaxDeleteIDs {
		t.Errorf("deleteUploads of exactly %d ids: %d deleted, %d not found", graph.MaxDeleteIDs, len(deleted), len(notFound))
	}

	largest := bytes.Repeat([]byte("x"), int(env.Config.MaxUploadSize))
	if res := env.UploadFile(key, "largest.bin", "text/plain", largest); len(res.Errors) > 0 {
		t.Errorf("an upload of exactly MAX_UPLOAD_SIZE (%d bytes): %+v", len(largest), res.Errors)
	}

	for _, tc := range []struct{ sent, want string }{
		{strings.Repeat("a", 251) + ".txt", strings.Repeat("a", 251) + ".txt"}, // 255 bytes: kept
		{strings.Repeat("é", 130), strings.Repeat("é", 127)},                   // 260 bytes: whole runes up to 255
	} {
		u := env.MustUpload(key, tc.sent, []byte("n"))
		if u.Filename != tc.want {
			t.Errorf("filename of %d bytes stored as %d bytes %q, want %d bytes", len(tc.sent), len(u.Filename), u.Filename, len(tc.want))
		}
	}
}

// TestContentTypeKept: the content type the client sent is the upload's.
func TestContentTypeKept(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	res := env.UploadFile(key, "notes.txt", "text/plain; charset=utf-8", []byte("n"))
	var data struct{ UploadFile struct{ ContentType string } }
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("upload: %+v", res.Errors)
	}
	if data.UploadFile.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("contentType %q, want the one sent", data.UploadFile.ContentType)
	}
}

// TestNodeOfMine: node(id) finds the caller's own upload and user record.
func TestNodeOfMine(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	u := env.MustUpload(key, "mine.txt", []byte("m"))
	for _, id := range []string{u.ID, userID} {
		res := env.GraphQL(key, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
		var data struct{ Node *struct{ ID string } }
		if len(res.Errors) > 0 || res.Decode(&data) != nil || data.Node == nil || data.Node.ID != id {
			t.Errorf("node(%s) = %s %+v, want it", id, res.Data, res.Errors)
		}
	}
}

// TestAuditEventsPageInfo: first: 0 is an empty page, a page holding the
// last events has no next one, and a page after a cursor has a previous one.
func TestAuditEventsPageInfo(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ownerID, key := env.NewUser()
	ctx := context.Background()
	for range 3 {
		env.Client().AuditEvent.Create().SetUploadID("upl_x").SetOwnerID(ownerID).SetKind(auditevent.KindCREATED).
			SetActor("key_x").SetVia(auditevent.ViaGRAPHQL).SetCreatedAt(time.Now()).SaveX(ctx)
	}
	const query = `query($first: Int, $after: Cursor) { viewer { auditEvents(first: $first, after: $after) {
	  edges { cursor } pageInfo { hasNextPage hasPreviousPage } } } }`
	page := func(vars map[string]any) (n int, next, previous bool, cursors []string) {
		t.Helper()
		res := env.GraphQL(key, query, vars)
		var data struct {
			Viewer struct {
				AuditEvents struct {
					Edges    []struct{ Cursor string }
					PageInfo struct{ HasNextPage, HasPreviousPage bool }
				}
			}
		}
		if len(res.Errors) > 0 || res.Decode(&data) != nil {
			t.Fatalf("auditEvents(%v): %+v", vars, res.Errors)
		}
		c := data.Viewer.AuditEvents
		for _, e := range c.Edges {
			cursors = append(cursors, e.Cursor)
		}
		return len(c.Edges), c.PageInfo.HasNextPage, c.PageInfo.HasPreviousPage, cursors
	}
	if n, next, previous, _ := page(map[string]any{"first": 0}); n != 0 || !next || previous {
		t.Errorf("first: 0: %d events, hasNextPage %v, hasPreviousPage %v; want none, true, false", n, next, previous)
	}
	if n, next, previous, _ := page(map[string]any{"first": 3}); n != 3 || next || previous {
		t.Errorf("first: 3 of 3: %d events, hasNextPage %v, hasPreviousPage %v; want 3, false, false", n, next, previous)
	}
	_, _, _, cursors := page(map[string]any{"first": 1})
	if n, next, previous, _ := page(map[string]any{"first": 2, "after": cursors[0]}); n != 2 || next || !previous {
		t.Errorf("first: 2 after the first: %d events, hasNextPage %v, hasPreviousPage %v; want 2, false, true", n, next, previous)
	}
}

// TestDeliveriesFirst: an endpoint's deliveries(first: 1) is one delivery.
func TestDeliveriesFirst(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	ctx := context.Background()
	endpoint := env.Client().WebhookEndpoint.Create().SetOwnerID(userID).SetURL("https://hooks.example.com").
		SetEvents(nil).SetSecret([]byte("sealed")).SaveX(ctx)
	for i := range 2 {
		env.Client().WebhookDelivery.Create().SetMessageID(fmt.Sprintf("msg_%d", i)).SetEndpointID(endpoint.ID).
			SetUploadID("upl_x").SetEventType("upload.created").SetPayload("{}").
			SetNextAttemptAt(time.Now().Add(time.Hour)).SetCreatedAt(time.Now()).SaveX(ctx)
	}
	res := env.GraphQL(key, `{ viewer { webhookEndpoints { deliveries(first: 1) { id } } } }`, nil)
	var data struct {
		Viewer struct {
			WebhookEndpoints []struct{ Deliveries []struct{ ID string } }
		}
	}
	if len(res.Errors) > 0 || res.Decode(&data) != nil || len(data.Viewer.WebhookEndpoints) != 1 {
		t.Fatalf("webhookEndpoints: %+v %s", res.Errors, res.Data)
	}
	if n := len(data.Viewer.WebhookEndpoints[0].Deliveries); n != 1 {
		t.Errorf("deliveries(first: 1): %d deliveries", n)
	}
}

// TestPurgeTrashPastOneBatch: emptying a trash of more than one batch
// empties all of it, and says how many.
func TestPurgeTrashPastOneBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	userID, _ := env.NewUser()
	ctx := context.Background()
	const total = graph.MaxDeleteIDs + 1
	creates := make([]*ent.DeletedUploadCreate, total)
	now := time.Now()
	for i := range creates { // uploads that stored nothing: no purge to wait for
		creates[i] = env.Client().DeletedUpload.Create().SetID(fmt.Sprintf("upl_trash%05d", i)).SetOwnerID(userID).
			SetFilename("f").SetContentType("text/plain").SetSize(0).SetStatus(deletedupload.StatusFAILED).
			SetCreatedAt(now).SetDeletedAt(now).SetPurgeAt(now.Add(time.Hour))
	}
	for done := 0; done < total; done += 1000 {
		env.Client().DeletedUpload.CreateBulk(creates[done:min(done+1000, total)]...).ExecX(ctx)
	}
	n, err := env.App.Resolver.PurgeTrash(ctx, userID)
	if left := env.Client().DeletedUpload.Query().CountX(ctx); err != nil || n != total || left != 0 {
		t.Errorf("PurgeTrash = %d, %v; %d entries left; want %d purged, none left", n, err, left, total)
	}
}

// TestPurgeTrashCountsObjects: emptying a trash whose uploads have objects
// says how many it purged, and the objects are gone.
func TestPurgeTrashCountsObjects(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	userID, key := env.NewUser()
	var ids []string
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		ids = append(ids, env.MustUpload(key, name, []byte(name)).ID)
	}
	if res := env.GraphQL(key, `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds } }`,
		map[string]any{"ids": ids}); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	n, err := env.App.Resolver.PurgeTrash(context.Background(), userID)
	if err != nil || n != len(ids) {
		t.Errorf("PurgeTrash = %d, %v; want %d", n, err, len(ids))
	}
	if left := env.ObjectKeys(); len(left) != 0 {
		t.Errorf("objects left after PurgeTrash: %v", left)
	}
}

// TestPurgeUploadWhileS3IsDown: purgeUpload closes the window at once even
// when the object cannot go yet: the upload leaves the trash listing and can
// no longer be restored; its purge is left to the background loop.
func TestPurgeUploadWhileS3IsDown(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	_, key := env.NewUser()
	u := env.MustUpload(key, "gone.txt", []byte("g"))
	if deleted, _ := deleteMany(t, env, key, []string{u.ID}); len(deleted) != 1 {
		t.Fatal("delete")
	}
	env.S3.SetMode(faultproxy.Unavailable)
	env.GraphQL(key, purgeMutation, map[string]any{"id": u.ID}) // its answer is not the point
	for _, e := range trash(t, env, key) {
		if e.ID == u.ID {
			t.Errorf("purged while S3 was down, the upload is still listed as restorable until %v", e.PurgeAt)
		}
	}
	if _, code := restore(t, env, key, u.ID); code != "NOT_FOUND" {
		t.Errorf("restore after purgeUpload: %q, want NOT_FOUND", code)
	}
	env.S3.SetMode(faultproxy.Pass)
}
