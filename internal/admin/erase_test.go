package admin_test

import (
	"context"
	"github.com/safedelete/uploads/internal/audit"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/testenv"
)

// stuckDeleter deletes nothing, as a delete path that cannot see some of
// the user's uploads would.
type stuckDeleter struct {
	t      *testing.T
	rounds int
}

func (d *stuckDeleter) DeleteOwnedBatches(context.Context, audit.Actor, string, int, func(context.Context, int) ([]string, error)) (int, error) {
	if d.rounds++; d.rounds > 10 {
		d.t.Fatal("EraseUser keeps going round after round") // it would loop for ever
	}
	return 0, nil
}

func (d *stuckDeleter) PurgeTrash(context.Context, string) (int, error) { return 0, nil }

// TestEraseUserGivesUp: when rounds of deletes leave uploads that they do
// not remove, the erasure stops with an error, keeping the user and the
// uploads, instead of looping for ever.
func TestEraseUserGivesUp(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	u := env.MustUpload(key, "kept.txt", []byte("kept"))
	deleter := &stuckDeleter{t: t}
	erased, err := admin.EraseUser(context.Background(), env.Client(), deleter, userID)
	if err == nil || !strings.Contains(err.Error(), "run it again") {
		t.Fatalf("EraseUser = %+v, %v; want an error saying to run it again", erased, err)
	}
	if deleter.rounds != 3 {
		t.Errorf("gave up after %d rounds, want 3", deleter.rounds)
	}
	if !env.Client().User.Query().Where(user.ID(userID)).ExistX(context.Background()) {
		t.Error("the user was deleted with uploads left")
	}
	env.AssertIntact(u)
}
