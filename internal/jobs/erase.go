package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/idempotencykey"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/signin"
)

// RevokeAccess is the first step of erasing a user: their API keys are
// revoked and their sign-in identities retired (kept only as digests), so
// that nobody adds uploads while the erase runs. It returns how many keys
// and identities.
func RevokeAccess(ctx context.Context, client *ent.Client, userID string) (keys, identities int, err error) {
	keys, err = client.APIKey.Update().
		Where(apikey.OwnerID(userID), apikey.RevokedAtIsNil()).
		SetRevokedAt(time.Now()).
		Save(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("revoke keys: %w", err)
	}
	err = database.WithTx(ctx, client, func(tx *ent.Tx) (err error) {
		identities, err = signin.Retire(ctx, tx, userID)
		return err
	})
	if err != nil {
		return keys, 0, fmt.Errorf("retire sign-in identities: %w", err)
	}
	return keys, identities, nil
}

// ErrUploadsLeft is RemoveUser of a user who still has uploads (arrived
// since their access was revoked, from a request authenticated before):
// delete them, then try again.
var ErrUploadsLeft = errors.New("uploads arrived meanwhile")

// RemoveUser is the last step of erasing a user, in tx, once their uploads
// are deleted: their webhook endpoints and deliveries, API keys, the
// answers kept for their retries, their deletion jobs except keepJobID
// (the erase's own, "" for none), any sign-in identity linked meanwhile,
// and the user record. It returns how many identities it retired; with
// uploads left it changes nothing and returns ErrUploadsLeft.
func RemoveUser(ctx context.Context, tx *ent.Tx, userID, keepJobID string) (identities int, err error) {
	if left, err := tx.Upload.Query().Where(upload.OwnerID(userID)).Exist(ctx); err != nil || left {
		if err == nil {
			err = ErrUploadsLeft
		}
		return 0, err
	}
	// Their webhooks go with them: nobody is left to tell.
	if _, err := tx.WebhookDelivery.Delete().Where(webhookdelivery.HasEndpointWith(webhookendpoint.OwnerID(userID))).Exec(ctx); err != nil {
		return 0, err
	}
	if _, err := tx.WebhookEndpoint.Delete().Where(webhookendpoint.OwnerID(userID)).Exec(ctx); err != nil {
		return 0, err
	}
	if _, err := tx.APIKey.Delete().Where(apikey.OwnerID(userID)).Exec(ctx); err != nil {
		return 0, err
	}
	// And the answers kept for their retries, which name their uploads.
	if _, err := tx.IdempotencyKey.Delete().Where(idempotencykey.UserID(userID)).Exec(ctx); err != nil {
		return 0, err
	}
	// And their jobs, whose filters may name their files.
	if _, err := tx.DeletionJob.Delete().Where(deletionjob.OwnerID(userID), deletionjob.IDNEQ(keepJobID)).Exec(ctx); err != nil {
		return 0, err
	}
	// Any linked while the erase ran.
	if identities, err = signin.Retire(ctx, tx, userID); err != nil {
		return 0, err
	}
	return identities, tx.User.DeleteOneID(userID).Exec(ctx)
}

// erase runs a USER_ERASE job: all the user's uploads, a batch at a time,
// their trash, then, in one transaction with the job's success, the user
// (RemoveUser). Uploads that arrived meanwhile (from a request
// authenticated before the keys were revoked) are deleted in another
// round.
func (w *worker) erase(ctx context.Context) error {
	for stalled := 0; ; {
		before := w.job.DeletedCount
		all := w.j.client.Upload.Query().Where(upload.OwnerID(w.job.OwnerID))
		if err := w.sweep(ctx, all.Clone().Where(holds.NotHeld(time.Now()))); err != nil {
			return err
		}
		if _, err := w.j.deleter.PurgeTrash(ctx, w.job.OwnerID); err != nil {
			return fmt.Errorf("purge the trash: %w", err)
		}
		// A hold on the user or on any of their uploads keeps the user,
		// with what is held: the rest is gone (users delete --except-held,
		// or a hold placed while the erase ran).
		held, err := holds.ActiveOf(ctx, w.j.client, w.job.OwnerID)
		if err != nil {
			return err
		}
		if len(held) > 0 {
			return database.WithTx(ctx, w.j.client, func(tx *ent.Tx) error {
				if err := w.countHeld(ctx, tx, all); err != nil {
					return err
				}
				return w.succeed(ctx, tx)
			})
		}
		err = w.removeUser(ctx)
		if !errors.Is(err, ErrUploadsLeft) {
			return err
		}
		// Uploads are left that a round did not delete: once, a
		// concurrent delete may have raced it; round after round,
		// something keeps them, and looping would never end.
		if err := w.reload(ctx); err != nil {
			return err
		}
		if w.job.DeletedCount > before {
			stalled = 0
		} else if stalled++; stalled == maxStalledRounds {
			return errUploadsStuck
		}
	}
}

// removeUser ends the erase: in one transaction, the job SUCCEEDED and
// the user removed. On PostgreSQL a "purged" event's webhook delivery to
// the user's endpoint may commit between the removal of their deliveries
// and of their endpoints (the inline purges' last writes are batched in
// the background): the transaction then fails on the foreign key, and is
// tried again at once, a few times, before the run fails.
func (w *worker) removeUser(ctx context.Context) error {
	var err error
	for try := 0; try < 3; try++ {
		err = database.WithTx(ctx, w.j.client, func(tx *ent.Tx) error {
			if err := w.succeed(ctx, tx); err != nil {
				return err
			}
			_, err := RemoveUser(ctx, tx, w.job.OwnerID, w.job.ID)
			return err
		})
		if !ent.IsConstraintError(err) {
			return err
		}
	}
	return err
}

var errUploadsStuck = errors.New("uploads are left that rounds of deletes did not remove; the user is kept")

// maxStalledRounds is how many rounds in a row may delete nothing while
// uploads are left before an erase fails.
const maxStalledRounds = 3

func (w *worker) reload(ctx context.Context) error {
	job, err := w.j.client.DeletionJob.Get(ctx, w.job.ID)
	if err == nil {
		w.job = job
	}
	return err
}
