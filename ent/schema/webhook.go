package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/safedelete/uploads/internal/ids"
)

// WebhookEndpoint is a URL a user asked to be told about their uploads'
// events at, and the secret deliveries to it are signed with.
type WebhookEndpoint struct {
	ent.Schema
}

// Fields of the WebhookEndpoint.
func (WebhookEndpoint) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewWebhookEndpoint).
			Immutable().
			NotEmpty(),
		field.String("owner_id").
			Immutable().
			NotEmpty(),
		field.String("url").
			Immutable().
			NotEmpty(),
		field.Strings("events").
			Immutable().
			Comment("Event types sent (upload.deleted, …); empty means all."),
		field.Bytes("secret").
			Sensitive().
			NotEmpty().
			Comment("The signing secret, sealed with the service's webhook key (AES-GCM): never stored in plain text."),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
		field.Time("disabled_at").
			Optional().
			Nillable(),
		field.String("disabled_reason").
			Default(""),
	}
}

// Edges of the WebhookEndpoint.
func (WebhookEndpoint) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("deliveries", WebhookDelivery.Type),
	}
}

// Indexes of the WebhookEndpoint.
func (WebhookEndpoint) Indexes() []ent.Index {
	return []ent.Index{index.Fields("owner_id")}
}

// Annotations of the WebhookEndpoint.
func (WebhookEndpoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// WebhookDelivery is one event to send to one endpoint: the outbox. It is
// written in the transaction of the change it reports, so an event is
// never lost (the row commits with the change) nor invented (it rolls back
// with it). A sender claims it by moving next_attempt_at forward (a lease),
// like a purge.
type WebhookDelivery struct {
	ent.Schema
}

// Fields of the WebhookDelivery.
func (WebhookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.String("message_id").
			Immutable().
			Unique().
			NotEmpty().
			Comment("The webhook-id header: the same on every attempt, so receivers can drop duplicates."),
		field.String("endpoint_id").
			Immutable().
			NotEmpty(),
		field.String("upload_id").
			Immutable().
			NotEmpty().
			Comment("Deliveries of one upload to one endpoint are sent in order."),
		field.String("event_type").
			Immutable().
			NotEmpty(),
		field.Text("payload").
			Immutable().
			NotEmpty(),
		field.Enum("status").
			Values("PENDING", "DELIVERED", "FAILED").
			Default("PENDING"),
		field.Int("attempts").
			Default(0).
			NonNegative(),
		field.Time("next_attempt_at"),
		field.String("last_error").
			Default(""),
		field.Int("last_status_code").
			Default(0),
		field.Time("created_at").
			Immutable().
			Default(time.Now),
		field.Time("delivered_at").
			Optional().
			Nillable(),
		field.Int("after_id").
			Optional().
			Nillable().
			Comment("The delivery of the same upload to the same endpoint that this one waits for until it is no longer PENDING, so a receiver hears of an upload's events in order: the latest pending when this one was queued, or an earlier one redelivered since. Null when none."),
		traceparentField(),
	}
}

// Edges of the WebhookDelivery.
func (WebhookDelivery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("endpoint", WebhookEndpoint.Type).
			Ref("deliveries").
			Field("endpoint_id").
			Unique().
			Required().
			Immutable(),
	}
}

// Indexes of the WebhookDelivery.
func (WebhookDelivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status", "next_attempt_at"),
		index.Fields("endpoint_id", "upload_id"),
		// An endpoint's pending deliveries, by when due: the breaker's
		// postponement, the claim's search for endpoints with due
		// deliveries and their oldest, and the last delivered check.
		index.Fields("endpoint_id", "status", "next_attempt_at"),
	}
}

// Annotations of the WebhookDelivery.
func (WebhookDelivery) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
