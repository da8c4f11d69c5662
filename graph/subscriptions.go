package graph

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/events"
	"github.com/safedelete/uploads/internal/scope"
)

// Error codes of subscriptions.
const (
	CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"
	CodeSlowSubscriber       = "SLOW_SUBSCRIBER"
	CodeShuttingDown         = "SHUTTING_DOWN"
)

// The errors a subscription can end with, or be refused with.
var (
	ErrBadEventCursor  = &PublicError{Code: CodeBadUserInput, Message: "after is not the id of an audit event"}
	ErrCredentialEnded = &PublicError{Code: CodeUnauthenticated, Message: "The subscription ended: its credential was revoked or expired"}
	ErrSlowSubscriber  = &PublicError{Code: CodeSlowSubscriber, Message: "The subscription ended: its reader fell too far behind; subscribe again with after set to the id of the last event received"}
	ErrShuttingDown    = &PublicError{Code: CodeShuttingDown, Message: "The subscription ended: the server is shutting down; subscribe again with after set to the id of the last event received"}
)

// uploadEvents is Subscription.uploadEvents: the caller's audit events,
// pushed as they commit (internal/events).
func (r *Resolver) uploadEvents(ctx context.Context, after *string) (<-chan *ent.AuditEvent, error) {
	v, err := requireScope(ctx, scope.AuditRead)
	if err != nil {
		return nil, err
	}
	var from *int
	if after != nil {
		id, err := strconv.Atoi(*after)
		if err != nil || id < 0 {
			return nil, ErrBadEventCursor
		}
		from = &id
	}
	feed := r.options.Events
	if feed == nil {
		return nil, errors.New("subscriptions are not served: no event feed")
	}
	sub, err := feed.Subscribe(ctx, events.Subscriber{
		OwnerID: v.UserID, Credential: v.Credential(), APIKeyID: v.APIKeyID, Expires: v.Expires,
	}, from)
	if err != nil {
		return nil, subscriptionError(err, feed.PerCredential())
	}
	onStreamEnd(ctx, func() error { return subscriptionError(sub.Err(), feed.PerCredential()) })
	return sub.Events(ctx), nil
}

// subscriptionError is the public face of why a subscription was refused
// or ended; nil when its reader ended it.
func subscriptionError(err error, perCredential int) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, events.ErrTooMany):
		return &PublicError{Code: CodeTooManySubscriptions, Message: fmt.Sprintf(
			"This credential already has %d subscriptions open, the most SUBSCRIPTIONS_PER_CREDENTIAL allows: close one first", perCredential)}
	case errors.Is(err, events.ErrSlowReader):
		return ErrSlowSubscriber
	case errors.Is(err, events.ErrCredentialEnded):
		return ErrCredentialEnded
	case errors.Is(err, events.ErrShutdown):
		return ErrShuttingDown
	}
	return err
}

// streamEnd carries, from a subscription's resolver to the transport, why
// its stream ended: gqlgen ends a stream when its channel closes, and has
// no way of its own to say why.
type streamEnd struct {
	mu   sync.Mutex
	why  func() error
	told bool
}

type streamEndKey struct{}

// WithStreamEnd returns ctx ready to carry why a subscription's stream
// ended; the server gives it to every subscription (see StreamEndError).
func WithStreamEnd(ctx context.Context) context.Context {
	return context.WithValue(ctx, streamEndKey{}, &streamEnd{})
}

// onStreamEnd records how to tell why ctx's stream ended.
func onStreamEnd(ctx context.Context, why func() error) {
	if end, ok := ctx.Value(streamEndKey{}).(*streamEnd); ok {
		end.mu.Lock()
		end.why = why
		end.mu.Unlock()
	}
}

// StreamEndError returns, once, the error ctx's stream ended with, for the
// transport to send as the stream's last message; nil when its reader
// ended it, or when it was told already.
func StreamEndError(ctx context.Context) error {
	end, ok := ctx.Value(streamEndKey{}).(*streamEnd)
	if !ok {
		return nil
	}
	end.mu.Lock()
	defer end.mu.Unlock()
	if end.told || end.why == nil {
		return nil
	}
	end.told = true
	return end.why()
}
