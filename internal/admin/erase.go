package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/jobs"
)

// Deleter deletes uploads of one owner: graph's delete core, the one every
// delete goes through.
type Deleter interface {
	// DeleteOwnedBatches deletes the owner's uploads that next returns, a
	// batch at a time, until it returns none; see graph.
	DeleteOwnedBatches(ctx context.Context, actor audit.Actor, ownerID string, limit int, next func(ctx context.Context, atMost int) ([]string, error)) (int, error)
	// PurgeTrash purges at once the objects of the owner's uploads in the
	// trash, closing their restore window, and returns how many.
	PurgeTrash(ctx context.Context, ownerID string) (int, error)
}

// Erasure is what EraseUser did.
type Erasure struct {
	UserID         string `json:"user_id"`
	UploadsDeleted int    `json:"uploads_deleted"`
	KeysRevoked    int    `json:"keys_revoked"`
	// IdentitiesRemoved counts the sign-in identities deleted with the
	// user; only their digests are kept, so that their tokens do not make
	// a new user by themselves.
	IdentitiesRemoved int `json:"identities_removed"`
}

// ErrNoSuchUser is returned by EraseUser for a user id that does not exist.
var ErrNoSuchUser = errors.New("no such user")

// EraseUser deletes a user and everything of theirs: first it revokes their
// keys, so that nothing new arrives; then it deletes their uploads through
// deleter, a batch at a time, each batch one transaction with its purge
// notes; last, in one transaction, their keys, their sign-in identities
// (kept only as digests) and the user record. Interrupted at any point, it
// can be run again and finishes the job: what was done stays done, and no
// object is left unknown (a deleted upload's purge note outlives the
// process; the service's purger finishes it). The counts are this run's.
func EraseUser(ctx context.Context, client *ent.Client, deleter Deleter, userID string) (Erasure, error) {
	result := Erasure{UserID: userID}
	exists, err := client.User.Query().Where(user.ID(userID)).Exist(ctx)
	if err != nil {
		return result, err
	}
	if !exists {
		return result, fmt.Errorf("%w: %q", ErrNoSuchUser, userID)
	}
	result.KeysRevoked, result.IdentitiesRemoved, err = jobs.RevokeAccess(ctx, client, userID)
	if err != nil {
		return result, err
	}
	for stalled := 0; ; {
		// A request authenticated just before the revocation may still
		// create an upload: the user goes only once none is left.
		deleted, err := deleter.DeleteOwnedBatches(ctx, audit.CLI, userID, 0, func(ctx context.Context, atMost int) ([]string, error) {
			return client.Upload.Query().Where(upload.OwnerID(userID)).Limit(atMost).IDs(ctx)
		})
		result.UploadsDeleted += deleted
		if err != nil {
			return result, fmt.Errorf("delete uploads: %w", err)
		}
		if _, err := deleter.PurgeTrash(ctx, userID); err != nil {
			return result, fmt.Errorf("purge the trash: %w", err)
		}
		err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
			identities, err := jobs.RemoveUser(ctx, tx, userID, "")
			result.IdentitiesRemoved += identities
			return err
		})
		if !errors.Is(err, jobs.ErrUploadsLeft) {
			if err != nil {
				return result, fmt.Errorf("delete user: %w", err)
			}
			return result, nil
		}
		// Uploads are left that a round did not delete: once, a concurrent
		// delete may have raced it; round after round, something keeps
		// them, and looping would never end.
		if deleted > 0 {
			stalled = 0
		} else if stalled++; stalled == maxStalledRounds {
			return result, fmt.Errorf("delete uploads: %w", errUploadsStuck)
		}
	}
}

var errUploadsStuck = errors.New("uploads are left that rounds of deletes did not remove; the user is kept, run it again")

// maxStalledRounds is how many rounds in a row may delete nothing while
// uploads are left before EraseUser gives up.
const maxStalledRounds = 3

// CheckErase says what is wrong with the flags of `users delete`, if
// anything; it runs before anything is opened.
var CheckErase = needsID("users delete")

// RunErase is `users delete --id usr_… [--json]`.
func RunErase(ctx context.Context, client *ent.Client, deleter Deleter, o Options, out io.Writer) error {
	if err := CheckErase(o); err != nil {
		return err
	}
	erased, err := EraseUser(ctx, client, deleter, o.ID)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(erased)
	}
	_, err = fmt.Fprintf(out, "Deleted user %s: %d uploads deleted, %d keys revoked, %d sign-in identities removed.\n",
		erased.UserID, erased.UploadsDeleted, erased.KeysRevoked, erased.IdentitiesRemoved)
	return err
}
