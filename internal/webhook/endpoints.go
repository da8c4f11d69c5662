package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/ids"
)

// MaxEndpointsPerOwner bounds a user's endpoints: each event is stored and
// sent once per endpoint.
const MaxEndpointsPerOwner = 10

// MaxDeliveriesPage is the most deliveries Deliveries returns at once.
const MaxDeliveriesPage = 100

// CreateEndpoint registers rawURL to receive ownerID's events of the given
// types (none: all). It returns the endpoint and its signing secret
// ("whsec_…"), which is shown this once and stored only sealed.
func CreateEndpoint(ctx context.Context, client *ent.Client, sealer *Sealer, ownerID, rawURL string, eventTypes []string, allowHTTP bool) (*ent.WebhookEndpoint, string, error) {
	if err := ValidateURL(rawURL, allowHTTP); err != nil {
		return nil, "", err
	}
	events, err := subscription(eventTypes)
	if err != nil {
		return nil, "", err
	}
	id := ids.NewWebhookEndpoint()
	secret, raw := NewSecret()
	var endpoint *ent.WebhookEndpoint
	// Counted and created in one transaction that excludes the owner's
	// other registrations (lockOwnerEndpoints): racing calls cannot both
	// see room for one more.
	err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
		if err := lockOwnerEndpoints(ctx, tx, ownerID); err != nil {
			return fmt.Errorf("lock webhook endpoints: %w", err)
		}
		n, err := tx.WebhookEndpoint.Query().Where(webhookendpoint.OwnerID(ownerID)).Count(ctx)
		if err != nil {
			return fmt.Errorf("count webhook endpoints: %w", err)
		}
		if n >= MaxEndpointsPerOwner {
			return ErrTooManyEndpoints
		}
		endpoint, err = tx.WebhookEndpoint.Create().
			SetID(id).
			SetOwnerID(ownerID).
			SetURL(rawURL).
			SetEvents(events).
			SetSecret(sealer.Seal(id, raw)).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("create webhook endpoint: %w", err)
		}
		return idempotency.Record(ctx, tx, id)
	})
	if err != nil {
		return nil, "", err
	}
	return endpoint, secret, nil
}

// endpointsLockClass is the first key of the PostgreSQL advisory locks that
// serialize an owner's endpoint registrations (the second is the owner's).
const endpointsLockClass = 0x77686b // "whk"

// lockOwnerEndpoints makes the transactions that register endpoints for
// ownerID take turns until tx ends. On PostgreSQL it takes an advisory
// lock on the owner (a lock on the user row would hold only for owners
// that have one); SQLite's write transactions take turns already (see
// internal/database/writers.go).
func lockOwnerEndpoints(ctx context.Context, tx *ent.Tx, ownerID string) error {
	// Only the query builder knows the dialect: this query reads nothing.
	var postgres bool
	_, err := tx.WebhookEndpoint.Query().Where(func(s *sql.Selector) {
		postgres = s.Dialect() == dialect.Postgres
		s.Where(sql.False())
	}).Exist(ctx)
	if err != nil || !postgres {
		return err
	}
	_, err = tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", endpointsLockClass, ownerID)
	return err
}

// subscription checks the event types of a new endpoint and returns them
// without repeats, in EventTypes order.
func subscription(eventTypes []string) ([]string, error) {
	for _, t := range eventTypes {
		if !slices.Contains(EventTypes(), t) {
			return nil, invalid(fmt.Sprintf("Unknown event type %q; the event types are %s", t, strings.Join(EventTypes(), ", ")))
		}
	}
	events := []string{} // stored as [], not null
	for _, t := range EventTypes() {
		if slices.Contains(eventTypes, t) {
			events = append(events, t)
		}
	}
	return events, nil
}

// RotateSecret gives an endpoint of ownerID a new signing secret, which it
// returns. The old one signs nothing from now on (an attempt already under
// way may still carry it).
func RotateSecret(ctx context.Context, client *ent.Client, sealer *Sealer, ownerID, endpointID string) (*ent.WebhookEndpoint, string, error) {
	if !ids.Valid(ids.WebhookEndpointPrefix, endpointID) {
		return nil, "", ErrEndpointNotFound
	}
	secret, raw := NewSecret()
	var n int
	err := database.WithTx(ctx, client, func(tx *ent.Tx) (err error) {
		n, err = tx.WebhookEndpoint.Update().
			Where(webhookendpoint.ID(endpointID), webhookendpoint.OwnerID(ownerID)).
			SetSecret(sealer.Seal(endpointID, raw)).
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		return idempotency.Record(ctx, tx, endpointID)
	})
	if err != nil {
		return nil, "", fmt.Errorf("rotate webhook secret: %w", err)
	}
	if n == 0 {
		return nil, "", ErrEndpointNotFound
	}
	endpoint, err := client.WebhookEndpoint.Get(ctx, endpointID)
	if err != nil {
		return nil, "", fmt.Errorf("read webhook endpoint: %w", err)
	}
	return endpoint, secret, nil
}

// EnableEndpoint enables a disabled endpoint of ownerID again: its pending
// deliveries are sent, and new events reach it. Enabling an enabled one
// changes nothing.
func EnableEndpoint(ctx context.Context, client *ent.Client, ownerID, endpointID string) (*ent.WebhookEndpoint, error) {
	if !ids.Valid(ids.WebhookEndpointPrefix, endpointID) {
		return nil, ErrEndpointNotFound
	}
	n, err := client.WebhookEndpoint.Update().
		Where(webhookendpoint.ID(endpointID), webhookendpoint.OwnerID(ownerID)).
		ClearDisabledAt().
		SetDisabledReason("").
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("enable webhook endpoint: %w", err)
	}
	if n == 0 {
		return nil, ErrEndpointNotFound
	}
	endpoint, err := client.WebhookEndpoint.Get(ctx, endpointID)
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoint: %w", err)
	}
	return endpoint, nil
}

// DeleteEndpoint deletes an endpoint of ownerID and all its deliveries, in
// one transaction: nothing more is sent to it.
func DeleteEndpoint(ctx context.Context, client *ent.Client, ownerID, endpointID string) error {
	if !ids.Valid(ids.WebhookEndpointPrefix, endpointID) {
		return ErrEndpointNotFound
	}
	return database.WithTx(ctx, client, func(tx *ent.Tx) error {
		owned, err := tx.WebhookEndpoint.Query().
			Where(webhookendpoint.ID(endpointID), webhookendpoint.OwnerID(ownerID)).
			Exist(ctx)
		if err != nil {
			return fmt.Errorf("find webhook endpoint: %w", err)
		}
		if !owned {
			return ErrEndpointNotFound
		}
		if _, err := tx.WebhookDelivery.Delete().Where(webhookdelivery.EndpointID(endpointID)).Exec(ctx); err != nil {
			return fmt.Errorf("delete webhook deliveries: %w", err)
		}
		if err := tx.WebhookEndpoint.DeleteOneID(endpointID).Exec(ctx); err != nil {
			return fmt.Errorf("delete webhook endpoint: %w", err)
		}
		return idempotency.Record(ctx, tx, endpointID)
	})
}

// Endpoints returns ownerID's endpoints, oldest first.
func Endpoints(ctx context.Context, client *ent.Client, ownerID string) ([]*ent.WebhookEndpoint, error) {
	endpoints, err := client.WebhookEndpoint.Query().
		Where(webhookendpoint.OwnerID(ownerID)).
		Order(webhookendpoint.ByCreatedAt(), webhookendpoint.ByID()).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return endpoints, nil
}

// Deliveries returns the first (1 to MaxDeliveriesPage) most recent
// deliveries to an endpoint of ownerID, newest first.
func Deliveries(ctx context.Context, client *ent.Client, ownerID, endpointID string, first int) ([]*ent.WebhookDelivery, error) {
	if first < 1 || first > MaxDeliveriesPage {
		return nil, invalid(fmt.Sprintf("first must be between 1 and %d", MaxDeliveriesPage))
	}
	if !ids.Valid(ids.WebhookEndpointPrefix, endpointID) {
		return nil, ErrEndpointNotFound
	}
	owned, err := client.WebhookEndpoint.Query().
		Where(webhookendpoint.ID(endpointID), webhookendpoint.OwnerID(ownerID)).
		Exist(ctx)
	if err != nil {
		return nil, fmt.Errorf("find webhook endpoint: %w", err)
	}
	if !owned {
		return nil, ErrEndpointNotFound
	}
	deliveries, err := client.WebhookDelivery.Query().
		Where(webhookdelivery.EndpointID(endpointID)).
		Order(webhookdelivery.ByID(sql.OrderDesc())).
		Limit(first).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return deliveries, nil
}

// waitForRedelivered makes the pending deliveries of a pair queued after a
// redelivered one ($1) wait for it, but for those that wait for another of
// them (which waits for it in turn): after_id is the one a delivery waits
// for (see firstPendingOfUpload). PostgreSQL's placeholders are also
// SQLite's.
var waitForRedelivered = fmt.Sprintf(`UPDATE %[1]s SET %[2]s = $1 WHERE %[3]s = $2 AND %[4]s = $3 AND %[5]s = $4 AND %[6]s > $1
	AND (%[2]s IS NULL OR %[2]s < $1 OR NOT EXISTS (SELECT 1 FROM %[1]s AS earlier WHERE earlier.%[6]s = %[1]s.%[2]s AND earlier.%[5]s = $4))`,
	webhookdelivery.Table, webhookdelivery.FieldAfterID, webhookdelivery.FieldEndpointID, webhookdelivery.FieldUploadID,
	webhookdelivery.FieldStatus, webhookdelivery.FieldID)

// Redeliver sends a delivery of ownerID's again, with the same webhook-id:
// a DELIVERED or FAILED one becomes PENDING and due at once (and gets one
// attempt if it is older than the retry window). A PENDING one is returned
// as it is: it is being sent already. A delivery to a disabled endpoint is
// refused with ErrEndpointDisabled, since it would not be sent; Redeliver
// enables nothing.
func Redeliver(ctx context.Context, client *ent.Client, ownerID, messageID string) (*ent.WebhookDelivery, error) {
	if !ids.Valid(ids.MessagePrefix, messageID) {
		return nil, ErrDeliveryNotFound
	}
	delivery, err := client.WebhookDelivery.Query().
		Where(webhookdelivery.MessageID(messageID), webhookdelivery.HasEndpointWith(webhookendpoint.OwnerID(ownerID))).
		WithEndpoint().
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrDeliveryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find webhook delivery: %w", err)
	}
	if delivery.Edges.Endpoint.DisabledAt != nil {
		return nil, ErrEndpointDisabled
	}
	if delivery.Status == webhookdelivery.StatusPENDING {
		return delivery, nil
	}
	// Attempts is kept: it counts every attempt, and a claim's token
	// (see stillClaimed) must never be reused.
	err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
		n, err := tx.WebhookDelivery.Update().
			Where(
				webhookdelivery.ID(delivery.ID),
				webhookdelivery.StatusIn(webhookdelivery.StatusDELIVERED, webhookdelivery.StatusFAILED),
			).
			SetStatus(webhookdelivery.StatusPENDING).
			SetNextAttemptAt(time.Now()).
			ClearDeliveredAt().
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		// The later deliveries of its upload to its endpoint still pending
		// wait for it again, as they would have had it been pending when
		// they were queued: each that waits for none of them waits for it.
		_, err = tx.ExecContext(ctx, waitForRedelivered, delivery.ID, delivery.EndpointID, delivery.UploadID, webhookdelivery.StatusPENDING.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver webhook: %w", err)
	}
	delivery, err = client.WebhookDelivery.Get(ctx, delivery.ID)
	if err != nil {
		return nil, fmt.Errorf("read webhook delivery: %w", err)
	}
	return delivery, nil
}
