package graph

import (
	"cmp"
	"context"
	"errors"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/idempotency"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/webhook"
)

// The webhook resolvers are thin: the rules (owner scoping, URL checks,
// secrets sealed at rest) are the webhook package's.

func (r *Resolver) createWebhookEndpoint(ctx context.Context, url string, events []model.UploadEventKind) (*model.WebhookEndpointSecretPayload, error) {
	v, err := requireScope(ctx, scope.WebhooksManage)
	if err != nil {
		return nil, err
	}
	sealer, err := r.options.WebhookSealer()
	if err != nil {
		return nil, r.webhookError(ctx, "create webhook endpoint", err)
	}
	if payload, ok, err := r.endpointMadeBefore(ctx, v.UserID, sealer); ok || err != nil {
		return payload, err
	}
	types := make([]string, len(events))
	for i, kind := range events {
		types[i] = eventType(kind)
	}
	endpoint, secret, err := webhook.CreateEndpoint(ctx, r.client, sealer, v.UserID, url, types, r.options.WebhookAllowHTTP)
	if err != nil {
		return nil, r.webhookError(ctx, "create webhook endpoint", err)
	}
	return &model.WebhookEndpointSecretPayload{Endpoint: endpoint, Secret: secret}, nil
}

func (r *Resolver) rotateWebhookSecret(ctx context.Context, id string) (*model.WebhookEndpointSecretPayload, error) {
	v, err := requireScope(ctx, scope.WebhooksManage)
	if err != nil {
		return nil, err
	}
	sealer, err := r.options.WebhookSealer()
	if err != nil {
		return nil, r.webhookError(ctx, "rotate webhook secret", err)
	}
	if payload, ok, err := r.endpointMadeBefore(ctx, v.UserID, sealer); ok || err != nil {
		return payload, err
	}
	endpoint, secret, err := webhook.RotateSecret(ctx, r.client, sealer, v.UserID, id)
	if err != nil {
		return nil, r.webhookError(ctx, "rotate webhook secret", err)
	}
	return &model.WebhookEndpointSecretPayload{Endpoint: endpoint, Secret: secret}, nil
}

func (r *Resolver) deleteWebhookEndpoint(ctx context.Context, id string) (*model.DeleteWebhookEndpointPayload, error) {
	v, err := requireScope(ctx, scope.WebhooksManage)
	if err != nil {
		return nil, err
	}
	var before string
	if idempotency.Recorded(ctx, &before) && before == id {
		return &model.DeleteWebhookEndpointPayload{DeletedWebhookEndpointID: id}, nil
	}
	if err := webhook.DeleteEndpoint(ctx, r.client, v.UserID, id); err != nil {
		return nil, r.webhookError(ctx, "delete webhook endpoint", err)
	}
	return &model.DeleteWebhookEndpointPayload{DeletedWebhookEndpointID: id}, nil
}

func (r *Resolver) enableWebhookEndpoint(ctx context.Context, id string) (*ent.WebhookEndpoint, error) {
	v, err := requireScope(ctx, scope.WebhooksManage)
	if err != nil {
		return nil, err
	}
	endpoint, err := webhook.EnableEndpoint(ctx, r.client, v.UserID, id)
	return endpoint, r.webhookError(ctx, "enable webhook endpoint", err)
}

func (r *Resolver) redeliver(ctx context.Context, id string) (*ent.WebhookDelivery, error) {
	v, err := requireScope(ctx, scope.WebhooksManage)
	if err != nil {
		return nil, err
	}
	delivery, err := webhook.Redeliver(ctx, r.client, v.UserID, id)
	return delivery, r.webhookError(ctx, "redeliver", err)
}

// endpointMadeBefore answers a request that made or rotated an endpoint's
// secret in an earlier run (the same Idempotency-Key) whose instance died
// before answering: the endpoint and the secret it made, opened again.
func (r *Resolver) endpointMadeBefore(ctx context.Context, ownerID string, sealer *webhook.Sealer) (*model.WebhookEndpointSecretPayload, bool, error) {
	var endpointID string
	if !idempotency.Recorded(ctx, &endpointID) {
		return nil, false, nil
	}
	endpoint, err := r.client.WebhookEndpoint.Query().
		Where(webhookendpoint.ID(endpointID), webhookendpoint.OwnerID(ownerID)).
		Only(ctx)
	if err != nil {
		return nil, true, r.webhookError(ctx, "replay webhook endpoint", cmp.Or(ent.MaskNotFound(err), error(webhook.ErrEndpointNotFound)))
	}
	secret, err := webhook.SecretOf(sealer, endpoint)
	if err != nil {
		return nil, true, r.webhookError(ctx, "replay webhook endpoint", err)
	}
	return &model.WebhookEndpointSecretPayload{Endpoint: endpoint, Secret: secret}, true, nil
}

func (r *Resolver) webhookEndpoints(ctx context.Context, obj *ent.User) ([]*ent.WebhookEndpoint, error) {
	if _, err := requireScope(ctx, scope.WebhooksManage); err != nil {
		return nil, err
	}
	return webhook.Endpoints(ctx, r.client, obj.ID)
}

// DefaultDeliveriesPage is how many deliveries WebhookEndpoint.deliveries
// returns when first is not given (the schema's default, for first: null).
const DefaultDeliveriesPage = 20

func (r *Resolver) webhookDeliveries(ctx context.Context, obj *ent.WebhookEndpoint, first *int) ([]*ent.WebhookDelivery, error) {
	// Every path to an endpoint needs webhooks:manage already; checked here
	// too so that a new path to one cannot expose its payloads.
	if _, err := requireScope(ctx, scope.WebhooksManage); err != nil {
		return nil, err
	}
	n := DefaultDeliveriesPage
	if first != nil {
		n = *first
	}
	deliveries, err := webhook.Deliveries(ctx, r.client, obj.OwnerID, obj.ID, n)
	return deliveries, r.webhookError(ctx, "list webhook deliveries", err)
}

// webhookEvents is an endpoint's subscription as GraphQL enum values; an
// empty subscription means every event.
func webhookEvents(obj *ent.WebhookEndpoint) []model.UploadEventKind {
	types := obj.Events
	if len(types) == 0 {
		types = webhook.EventTypes()
	}
	kinds := make([]model.UploadEventKind, len(types))
	for i, t := range types {
		kinds[i] = model.UploadEventKind(strings.ToUpper(strings.TrimPrefix(t, "upload.")))
	}
	return kinds
}

// eventType is the payload type of an event kind: DELETED is upload.deleted.
func eventType(kind model.UploadEventKind) string {
	return "upload." + strings.ToLower(string(kind))
}

// webhookError maps the webhook package's errors to the API's: the
// caller's mistakes keep their message, anything else is internal.
func (r *Resolver) webhookError(ctx context.Context, what string, err error) error {
	var public *webhook.PublicError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &public) && errors.Is(err, webhook.ErrNotFound):
		return &PublicError{Code: CodeNotFound, Message: public.Message}
	case errors.As(err, &public):
		return &PublicError{Code: CodeBadUserInput, Message: public.Message}
	default:
		return r.publicOr(ctx, what, err)
	}
}
