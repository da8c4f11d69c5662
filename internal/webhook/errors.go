package webhook

import (
	"errors"
	"fmt"
)

// The kinds of PublicError, for errors.Is: the GraphQL layer maps
// ErrNotFound to NOT_FOUND and ErrInvalidInput to BAD_USER_INPUT.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalidInput = errors.New("invalid input")
)

// PublicError is a caller's mistake; its Message is fit to show them.
type PublicError struct {
	Kind    error // ErrNotFound or ErrInvalidInput
	Message string
}

func (e *PublicError) Error() string { return e.Message }

// Unwrap returns the error's kind.
func (e *PublicError) Unwrap() error { return e.Kind }

// The errors of the management functions. Another user's endpoint or
// delivery is not found, exactly like one that does not exist.
var (
	ErrEndpointNotFound = &PublicError{Kind: ErrNotFound, Message: "Webhook endpoint not found"}
	ErrDeliveryNotFound = &PublicError{Kind: ErrNotFound, Message: "Webhook delivery not found"}
	// ErrEndpointDisabled refuses a redelivery that would never be sent.
	ErrEndpointDisabled = &PublicError{Kind: ErrInvalidInput, Message: "The webhook endpoint is disabled; enable it before redelivering"}
	ErrTooManyEndpoints = &PublicError{Kind: ErrInvalidInput, Message: fmt.Sprintf("A user may have at most %d webhook endpoints", MaxEndpointsPerOwner)}
)

func invalid(message string) error {
	return &PublicError{Kind: ErrInvalidInput, Message: message}
}
