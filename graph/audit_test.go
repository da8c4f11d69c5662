package graph_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/testenv"
)

const auditQuery = `query($first: Int, $after: Cursor, $where: AuditEventFilter) {
  viewer { auditEvents(first: $first, after: $after, where: $where) {
    edges { cursor node { id uploadId kind actor via requestId createdAt } }
    pageInfo { hasNextPage endCursor }
  } }
}`

type auditEvent struct {
	ID        string
	UploadID  string
	Kind      string
	Actor     string
	Via       string
	RequestID string
	CreatedAt time.Time
}

func auditEvents(t *testing.T, env *testenv.Env, key string, vars map[string]any) (events []auditEvent, next string) {
	t.Helper()
	res := env.GraphQL(key, auditQuery, vars)
	var data struct {
		Viewer struct {
			AuditEvents struct {
				Edges    []struct{ Node auditEvent }
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
	}
	if len(res.Errors) > 0 || res.Decode(&data) != nil {
		t.Fatalf("auditEvents: %+v %s", res.Errors, res.Data)
	}
	for _, e := range data.Viewer.AuditEvents.Edges {
		events = append(events, e.Node)
	}
	if data.Viewer.AuditEvents.PageInfo.HasNextPage {
		next = data.Viewer.AuditEvents.PageInfo.EndCursor
	}
	return events, next
}

func kinds(events []auditEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Kind+"/"+e.Via)
	}
	return out
}

// TestAuditTrail follows one upload through its life, by every interface,
// and reads the trail back: newest first, who, through what, which request.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, withTrash(time.Hour))
	ownerID, key := env.NewUser()
	_, otherKey := env.NewUser()
	keyID := env.Client().APIKey.Query().Where(apikey.OwnerID(ownerID)).OnlyIDX(context.Background())
	a := env.MustUpload(key, "a.txt", []byte("a"))
	b := env.MustUpload(key, "b.txt", []byte("b"))

	res := env.Do(http.MethodDelete, "/delete-upload-api", http.Header{
		"X-Api-Key": {key}, "X-Upload-Id": {a.ID}, "X-Request-Id": {"trace-4711"},
	}, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("REST delete: %d", res.Status)
	}
	if _, code := restore(t, env, key, a.ID); code != "" {
		t.Fatalf("restore: %s", code)
	}
	if d, _ := deleteMany(t, env, key, []string{a.ID}); len(d) != 1 {
		t.Fatal("delete")
	}
	if res := env.GraphQL(key, purgeMutation, map[string]any{"id": a.ID}); len(res.Errors) > 0 {
		t.Fatalf("purge: %+v", res.Errors)
	}
	env.Eventually(5*time.Second, "the purge is recorded", func() bool { return env.PendingPurges() == 0 })

	all, _ := auditEvents(t, env, key, nil)
	var ofA []auditEvent
	for _, e := range all {
		if e.UploadID == a.ID {
			ofA = append(ofA, e)
		}
	}
	want := []string{"PURGED/PURGER", "DELETED/GRAPHQL", "RESTORED/GRAPHQL", "DELETED/REST", "CREATED/GRAPHQL"}
	if got := kinds(ofA); !slices.Equal(got, want) {
		t.Fatalf("a's trail, newest first = %v, want %v", got, want)
	}
	rest := ofA[3]
	if rest.Actor != keyID || rest.RequestID != "trace-4711" {
		t.Errorf("REST delete recorded as actor %q, request %q; want the key's id %q and the request's id", rest.Actor, rest.RequestID, keyID)
	}
	if ofA[0].Actor != "purger" {
		t.Errorf("purge actor %q", ofA[0].Actor)
	}
	for _, e := range all {
		if e.Actor == key {
			t.Fatal("the API key itself is in the trail")
		}
	}

	t.Run("filters", func(t *testing.T) {
		byUpload, _ := auditEvents(t, env, key, map[string]any{"where": map[string]any{"uploadId": b.ID}})
		if got := kinds(byUpload); !slices.Equal(got, []string{"CREATED/GRAPHQL"}) {
			t.Errorf("where uploadId b: %v", got)
		}
		deletes, _ := auditEvents(t, env, key, map[string]any{"where": map[string]any{"kind": "DELETED"}})
		if got := kinds(deletes); !slices.Equal(got, []string{"DELETED/GRAPHQL", "DELETED/REST"}) {
			t.Errorf("where kind DELETED: %v", got)
		}
		since, _ := auditEvents(t, env, key, map[string]any{"where": map[string]any{"since": ofA[1].CreatedAt.Format(time.RFC3339Nano)}})
		if len(since) != 2 {
			t.Errorf("since the second delete: %v", kinds(since))
		}
	})
	t.Run("pages", func(t *testing.T) {
		var paged []auditEvent
		after := ""
		for range 10 {
			vars := map[string]any{"first": 2}
			if after != "" {
				vars["after"] = after
			}
			page, next := auditEvents(t, env, key, vars)
			paged = append(paged, page...)
			if after = next; after == "" {
				break
			}
		}
		if !slices.Equal(kinds(paged), kinds(all)) {
			t.Errorf("pages of 2 = %v, one page = %v", kinds(paged), kinds(all))
		}
	})
	t.Run("another user sees none of it", func(t *testing.T) {
		if theirs, _ := auditEvents(t, env, otherKey, nil); len(theirs) != 0 {
			t.Errorf("another user sees %v", kinds(theirs))
		}
	})
}

// TestAuditRolledBackDeleteLeavesNoEvent: a delete whose transaction fails
// (here, writing its purge note) records nothing.
func TestAuditRolledBackDeleteLeavesNoEvent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	a := env.MustUpload(key, "a.txt", []byte("a"))
	if _, err := env.Client().ExecContext(context.Background(), "DROP TABLE object_purges"); err != nil {
		t.Fatal(err)
	}
	expectError(t, env.GraphQL(key, deleteMutation, map[string]any{"id": a.ID}), "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
	env.AssertIntact(a)
	events, _ := auditEvents(t, env, key, nil)
	if got := kinds(events); !slices.Equal(got, []string{"CREATED/GRAPHQL"}) {
		t.Errorf("trail after a failed delete: %v", got)
	}
}
