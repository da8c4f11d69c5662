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
