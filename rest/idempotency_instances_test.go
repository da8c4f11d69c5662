package rest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestIdempotencyKeyTwoInstances: two instances on one database are sent
// the same delete with the same key at the same moment, for each of many
// uploads. Each delete runs once (one "deleted" event per upload); one
// answer is the delete's 200, the other a 409 or that 200 replayed, never a
// 404; and the caller who got the 409 gets the 200 replayed when it
// retries. On PostgreSQL the key's row is taken before the delete runs; on
// SQLite (two processes on one file) a key is written only with its
// delete, and the instance that did not write it gives the answer the
// other stored.
func TestIdempotencyKeyTwoInstances(t *testing.T) {
	t.Parallel()
	const uploads = 50
	first := testenv.New(t, testenv.Options{})
	instances := []*testenv.Env{first, first.NewInstance()}
	_, key := first.NewUser()

	var inUse, replayed int
	for n := range uploads {
		u := first.MustUpload(key, fmt.Sprintf("race-%d.txt", n), []byte("race"))
		idempotencyKey := "race-" + u.ID
		answers := make([]testenv.Response, len(instances))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, env := range instances {
			wg.Go(func() {
				<-start
				answers[i] = deleteWithKey(env, key, u.ID, idempotencyKey)
			})
		}
		close(start)
		wg.Wait()

		ran := 0
		for i, res := range answers {
			switch {
			case res.Status == 200 && res.Header.Get("Idempotent-Replayed") == "true":
				replayed++
				expect(t, res, 200, success(u.ID))
			case res.Status == 200:
				ran++
				expect(t, res, 200, success(u.ID))
			case res.Status == 409:
				inUse++
				expect(t, res, 409, keyInUse)
				// Its retry, once the other instance has answered: the delete's answer.
				again := deleteWithKey(instances[i], key, u.ID, idempotencyKey)
				expect(t, again, 200, success(u.ID))
				expectReplayed(t, again, true)
			default:
				t.Errorf("upload %d: got %d %s, want 200 or 409", n, res.Status, res.Body)
			}
		}
		if ran != 1 {
			t.Errorf("upload %d: %d answers ran the delete, want 1 (the other a 409 or the replay)", n, ran)
		}
	}
	t.Logf("%d uploads each deleted by two instances at once with one key: the second answer %d times a 409, %d times the replay",
		uploads, inUse, replayed)

	var events []struct {
		UploadID string `json:"upload_id"`
		Count    int    `json:"count"`
	}
	first.Client().AuditEvent.Query().
		Where(auditevent.KindEQ(auditevent.KindDELETED)).
		GroupBy(auditevent.FieldUploadID).
		Aggregate(ent.Count()).
		ScanX(context.Background(), &events)
	if len(events) != uploads {
		t.Errorf("%d uploads with a deleted event, want %d", len(events), uploads)
	}
	for _, e := range events {
		if e.Count != 1 {
			t.Errorf("upload %s: %d deleted events, want 1", e.UploadID, e.Count)
		}
	}
	if n := first.Client().Upload.Query().CountX(context.Background()); n != 0 {
		t.Errorf("%d upload records left, want none", n)
	}
}
