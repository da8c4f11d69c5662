package graph

import (
	"context"
	"errors"
	"time"
)

// CodeOperationTimeout is the extensions.code of a field stopped by the
// operation's deadline.
const CodeOperationTimeout = "OPERATION_TIMEOUT"

// ErrOperationTimeout is a field stopped because its operation ran past
// the server's deadline (GRAPHQL_TIMEOUT). Each delete runs in one
// transaction, which the deadline rolls back unless it has committed; what
// committed finishes its clean-up (purges, audit) all the same.
var ErrOperationTimeout = &PublicError{
	Code:    CodeOperationTimeout,
	Message: "The operation ran longer than the server allows one request (GRAPHQL_TIMEOUT) and was stopped: what it had finished stays done, a delete it was running was rolled back; ask for less in one request",
}

type deadlineKey struct{}

// WithOperationDeadline records when the work of ctx's operation must end.
// The server applies it to each root field (see OperationDeadline), so a
// field that must not be cut short can go without it.
func WithOperationDeadline(ctx context.Context, deadline time.Time) context.Context {
	return context.WithValue(ctx, deadlineKey{}, deadline)
}

// OperationDeadline returns the deadline WithOperationDeadline recorded.
func OperationDeadline(ctx context.Context) (time.Time, bool) {
	deadline, ok := ctx.Value(deadlineKey{}).(time.Time)
	return deadline, ok
}

// WithDeadline bounds ctx by its operation's deadline, if it has one; the
// context it returns says ErrOperationTimeout as its cause once it passes.
func WithDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := OperationDeadline(ctx)
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadlineCause(ctx, deadline, ErrOperationTimeout)
}

// timedOut reports whether ctx's operation deadline has passed.
func timedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrOperationTimeout)
}
