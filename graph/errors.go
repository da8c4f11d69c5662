package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/safedelete/uploads/internal/scope"
)

// Error codes, in GraphQL errors' extensions.code.
const (
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeNotFound        = "NOT_FOUND"
	CodeForbidden       = "FORBIDDEN"
	CodeInternal        = "INTERNAL_SERVER_ERROR"
	// CodeHeld is a delete of an upload that a legal hold keeps.
	CodeHeld = "HELD"
)

// PublicError is an error whose message is safe to show to the caller. The
// REST shim maps each one to its contract's status and wording.
type PublicError struct {
	Code    string
	Message string
}

func (e *PublicError) Error() string { return e.Message }

// The errors a caller can see.
var (
	ErrUnauthorized    = &PublicError{Code: CodeUnauthenticated, Message: "Unauthorized"}
	ErrMissingUploadID = &PublicError{Code: CodeBadUserInput, Message: "The upload id must not be blank"}
	ErrUploadNotFound  = &PublicError{Code: CodeNotFound, Message: "Upload not found"}
	ErrUploadHeld      = &PublicError{Code: CodeHeld, Message: "Upload is under legal hold"}
	ErrDeleteFailed    = &PublicError{Code: CodeInternal, Message: "Failed to delete upload record"}
	ErrInternal        = &PublicError{Code: CodeInternal, Message: "Internal server error"}
	ErrUploadTooLarge  = &PublicError{Code: CodeBadUserInput, Message: "File exceeds the maximum upload size"}
	// ErrInvalidFileHeader is a file part whose name or content type holds
	// a NUL character (or a content type that is not UTF-8).
	ErrInvalidFileHeader = &PublicError{Code: CodeBadUserInput, Message: "The file's name and content type must be UTF-8 without NUL characters"}
)

// Forbidden is the error of a field the caller's credential has no scope
// for; it names the scope.
func Forbidden(need scope.Scope) *PublicError {
	return &PublicError{Code: CodeForbidden, Message: "This credential lacks the scope " + need.String()}
}

// ErrorPresenter shows public errors as they are, with their code, and hides
// every other error behind a generic internal error (logging it first).
func ErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var public *PublicError
		isPublic := errors.As(err, &public)
		if timedOut(ctx) && (!isPublic || public.Code == CodeInternal) {
			// Whatever failed once the deadline passed failed because of it.
			public, isPublic = ErrOperationTimeout, true
		}
		if isPublic {
			gqlErr.Message = public.Message
			gqlErr.Extensions = map[string]any{"code": public.Code}
			return gqlErr
		}
		if callersFault(err) {
			code, _ := gqlErr.Extensions["code"].(string)
			if code == "" || code == "INVALID_PAGINATION" {
				if gqlErr.Extensions == nil {
					gqlErr.Extensions = map[string]any{}
				}
				gqlErr.Extensions["code"] = CodeBadUserInput
			}
			return gqlErr
		}
		logger.ErrorContext(ctx, "graphql resolver error", "path", gqlErr.Path.String(), "error", err)
		gqlErr.Message = ErrInternal.Message
		gqlErr.Extensions = map[string]any{"code": CodeInternal}
		return gqlErr
	}
}

// callersFault tells errors in the caller's request from failures of ours.
// gqlgen hands the presenter every error as a *gqlerror.Error:
//   - built as one, without a wrapped cause: gqlgen's parse and validation
//     errors and entgql's pagination errors (first and last together, a
//     negative count), all about the request;
//   - wrapping a cause, without a location: an argument that did not coerce
//     (a malformed cursor or time), raised before any resolver ran;
//   - wrapping a cause, with the field's location: an error returned by a
//     resolver (gqlgen adds the location), which is ours unless public.
func callersFault(err error) bool {
	gqlErr, ok := err.(*gqlerror.Error)
	return ok && (gqlErr.Err == nil || len(gqlErr.Locations) == 0)
}

// RecoverFunc turns a panic in a resolver into an internal error.
func RecoverFunc(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "graphql resolver panic", "panic", p)
		return ErrInternal
	}
}
