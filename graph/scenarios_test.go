package graph_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// failOn makes the database refuse, with an error, every statement that
// would op (INSERT or DELETE) a row of table whose column is value: a
// trigger, so that the failure comes from the database, in the middle of
// the delete's transaction, for that one upload only.
func failOn(t *testing.T, env *testenv.Env, table, op, column, value string) {
	t.Helper()
	name := fmt.Sprintf("planted_%s_%s", strings.ToLower(op), table)
	var statements []string
	if env.Config.DatabaseURL == "" { // SQLite
		statements = []string{fmt.Sprintf(`CREATE TRIGGER %s BEFORE %s ON %s FOR EACH ROW WHEN %s.%s = '%s'
			BEGIN SELECT RAISE(ABORT, 'planted failure'); END`, name, op, table, rowOf(op), column, value)}
	} else {
		statements = []string{
			`CREATE OR REPLACE FUNCTION planted_failure() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'planted failure'; END $$`,
			fmt.Sprintf(`CREATE TRIGGER %s BEFORE %s ON %s FOR EACH ROW WHEN (%s.%s = '%s')
				EXECUTE FUNCTION planted_failure()`, name, op, table, rowOf(op), column, value),
		}
	}
	for _, s := range statements {
		if _, err := env.Client().ExecContext(context.Background(), s); err != nil {
			t.Fatalf("plant the failure: %v", err)
		}
	}
}

func rowOf(op string) string {
	if op == "DELETE" {
		return "OLD"
	}
	return "NEW"
}

// rowCounts counts the rows a delete writes besides the uploads': purge
// notes, trash entries, audit events and webhook deliveries.
func rowCounts(t *testing.T, env *testenv.Env) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"object_purges", "deleted_uploads", "audit_events", "webhook_deliveries"} {
		var n int
		rows, err := env.Client().QueryContext(context.Background(), "SELECT COUNT(*) FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() || rows.Scan(&n) != nil {
			t.Fatalf("count %s: %v", table, rows.Err())
		}
		rows.Close()
		counts[table] = n
	}
	return counts
}

// TestDeleteFailingLateChangesNothing: whichever write of a delete fails —
// the record's DELETE, its purge note, its audit event, its webhook
// delivery — and for whichever upload of a batch (here a later one, not the
// first), the caller gets the documented error and nothing is deleted:
// every record and object is there, and no purge note, trash entry, audit
// event or delivery was added. By REST, GraphQL, deleteUploads and
// deleteUploadsWhere.
func TestDeleteFailingLateChangesNothing(t *testing.T) {
	t.Parallel()
	failures := []struct{ name, table, op, column string }{
		{"record", "uploads", "DELETE", "id"},
		{"purge note", "object_purges", "INSERT", "upload_id"},
		{"audit event", "audit_events", "INSERT", "upload_id"},
		{"webhook delivery", "webhook_deliveries", "INSERT", "upload_id"},
	}
	// Each deletes some of uploads, which the failure is planted on the last
	// of (by id, the order deleteUploadsWhere goes in), and checks the answer.
	ways := []struct {
		name   string
		delete func(t *testing.T, env *testenv.Env, key string, uploads []*ent.Upload)
	}{
		{"REST", func(t *testing.T, env *testenv.Env, key string, uploads []*ent.Upload) {
			res := env.DeleteREST(key, uploads[len(uploads)-1].ID)
			if res.Status != 500 || res.Body != `{"error":"Failed to delete upload record"}` {
				t.Errorf("REST: %d %s, want 500 Failed to delete upload record", res.Status, res.Body)
			}
		}},
		{"deleteUpload", func(t *testing.T, env *testenv.Env, key string, uploads []*ent.Upload) {
			res := env.GraphQL(key, deleteMutation, map[string]any{"id": uploads[len(uploads)-1].ID})
			expectError(t, res, "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
		}},
		{"deleteUploads", func(t *testing.T, env *testenv.Env, key string, uploads []*ent.Upload) {
			res := env.GraphQL(key, deleteManyMutation, map[string]any{"ids": ids(uploads...)})
			expectError(t, res, "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
		}},
		{"deleteUploadsWhere", func(t *testing.T, env *testenv.Env, key string, uploads []*ent.Upload) {
			res := env.GraphQL(key, deleteWhereMutation, map[string]any{"where": map[string]any{}, "dryRun": false})
			expectError(t, res, "INTERNAL_SERVER_ERROR", "Failed to delete upload record")
		}},
	}
	for _, failure := range failures {
		for _, way := range ways {
			t.Run(failure.name+"/"+way.name, func(t *testing.T) {
				t.Parallel()
				env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { withWebhooks(c) }})
				_, key := env.NewUser()
				h := newHook(t)
				_, secret := register(t, env, key, h.URL, nil)
				h.trust(t, secret)
				var uploads []*ent.Upload
				for i := range 3 {
					uploads = append(uploads, env.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte{byte('a' + i)}))
				}
				slices.SortFunc(uploads, func(a, b *ent.Upload) int { return strings.Compare(a.ID, b.ID) })
				settleWebhooks(t, env)
				before := rowCounts(t, env)
				failOn(t, env, failure.table, failure.op, failure.column, uploads[len(uploads)-1].ID)

				way.delete(t, env, key, uploads)

				env.AssertIntact(uploads...)
				if after := rowCounts(t, env); !maps.Equal(after, before) {
					t.Errorf("rows after the failed delete %v, before %v", after, before)
				}
				if n := env.PendingPurges(); n != 0 {
					t.Errorf("%d purges pending after a failed delete", n)
				}
			})
		}
	}
}
