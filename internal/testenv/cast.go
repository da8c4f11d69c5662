package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/apikey"
)

// Placeholders a fuzz input may contain. Expand replaces each by a value
// that exists only in the running service, so that seeds (and the fuzzer's
// mutations of them) can name real keys and uploads.
const (
	PhKey      = "{key}"      // the owner's API key
	PhKeyUpper = "{KEY}"      // the owner's API key in upper case
	PhIntruder = "{intruder}" // a valid key of a user who owns nothing
	PhRevoked  = "{revoked}"  // a revoked key of the owner
	PhMine     = "{mine}"     // the owner's live upload
	PhMineUp   = "{MINE}"     // the owner's live upload, id in upper case
	PhGone     = "{gone}"     // the owner's most recently deleted upload
	PhVictim   = "{victim}"   // an upload of a third user, whose key is never sent
)

// Cast is who a fuzz target plays with, and a model of what they own: an
// owner with one live upload, an intruder with a valid key and nothing of
// its own, a revoked key of the owner's, and a third user's upload (the
// victim) that must survive every input.
type Cast struct {
	env                               *Env
	OwnerKey, IntruderKey, RevokedKey string
	Mine                              *ent.Upload // the owner's one live upload
	Gone                              string      // id of the owner's last deleted upload
	Victim                            *ent.Upload
	VictimUser                        *ent.User
}

// NewCast creates the cast's users, keys and uploads.
func (e *Env) NewCast() *Cast {
	e.t.Helper()
	ctx := context.Background()
	ownerID, ownerKey := e.NewUser()
	_, intruderKey := e.NewUser()
	victimID, victimKey := e.NewUser()
	revoked, revokedKey, err := apikey.Create(ctx, e.Client(), ownerID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := apikey.Revoke(ctx, e.Client(), revoked.ID); err != nil {
		e.t.Fatal(err)
	}
	victimUser, err := e.Client().User.Get(ctx, victimID)
	if err != nil {
		e.t.Fatal(err)
	}
	return &Cast{
		env:         e,
		OwnerKey:    ownerKey,
		IntruderKey: intruderKey,
		RevokedKey:  revokedKey,
		Mine:        e.MustUpload(ownerKey, "mine.txt", []byte("mine")),
		Gone:        "upl_ffffffffffffffffffffffffffffffff",
		Victim:      e.MustUpload(victimKey, "victim-secret-b7e1.txt", []byte("not yours")),
		VictimUser:  victimUser,
	}
}

// Expand replaces the placeholders in a fuzz input by the cast's values.
func (c *Cast) Expand(s string) string {
	return strings.NewReplacer(
		PhKey, c.OwnerKey,
		PhKeyUpper, strings.ToUpper(c.OwnerKey),
		PhIntruder, c.IntruderKey,
		PhRevoked, c.RevokedKey,
		PhMine, c.Mine.ID,
		PhMineUp, strings.ToUpper(c.Mine.ID),
		PhGone, c.Gone,
		PhVictim, c.Victim.ID,
	).Replace(s)
}

// Settle checks the bucket and database after a request, reporting to t.
// When the owner's upload was deleted, its record and object must be gone,
// and a new live upload replaces it. In every case the victim's and the
// owner's uploads are intact and no other record was deleted.
func (c *Cast) Settle(t testing.TB, deleted bool) {
	t.Helper()
	env := c.env.For(t)
	if deleted {
		gone := c.Mine
		if _, err := env.Client().Upload.Get(context.Background(), gone.ID); !ent.IsNotFound(err) {
			t.Errorf("record of deleted upload %s: err %v, want not found", gone.ID, err)
		}
		// Purged inline normally, by the background purger if S3 was slow;
		// an object with no purge left to remove it stays: fail at once.
		env.Eventually(10*time.Second, "object of the deleted upload purged", func() bool {
			if !env.ObjectExists(gone.ObjectKey) {
				return true
			}
			if waiting, err := env.Client().ObjectPurge.Query().Where(objectpurge.ObjectKey(gone.ObjectKey)).Exist(context.Background()); err == nil && !waiting {
				t.Errorf("deleted upload %s: its object is left and no purge will remove it", gone.ID)
				return true
			}
			return false
		})
		c.Gone = gone.ID
		c.Mine = env.MustUpload(c.OwnerKey, "mine.txt", []byte("mine"))
	}
	env.AssertIntact(c.Victim, c.Mine)
	if n, err := env.Client().Upload.Query().Count(context.Background()); err != nil || n != 2 {
		t.Fatalf("%d upload records (err %v), want 2", n, err)
	}
}
