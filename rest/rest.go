// Package rest implements the legacy REST contract, DELETE
// /delete-upload-api, on top of the deleteUpload resolver. It parses
// headers and maps the resolver's errors to the documented statuses and
// bodies; every rule lives in the resolver.
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/ids"
)

// DeleteUploader is the deleteUpload mutation.
type DeleteUploader interface {
	DeleteUpload(ctx context.Context, id string) (*model.DeleteUploadPayload, error)
}

// Path is where the contract serves the endpoint.
const Path = "/delete-upload-api"

// The contract's error bodies, word for word.
const (
	msgUnauthorized     = "Unauthorized"
	msgMissingUploadID  = "Missing Upload-Id header"
	msgNotFound         = "Upload not found"
	msgHeld             = "Upload is under legal hold"
	msgDeleteFailed     = "Failed to delete upload record"
	msgMethodNotAllowed = "Method not allowed"
	msgTooManyRequests  = "Too many requests"
)

// NewDeleteUploadHandler serves DELETE /delete-upload-api. It expects the
// auth middleware to have run. The resolver logs its own failures; a panic
// is logged here and answered with the contract's 500, so that no caller
// ever sees a dropped connection.
func NewDeleteUploadHandler(mutation DeleteUploader, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			w.Header().Set("Allow", http.MethodDelete)
			methodNotAllowed.write(w)
			return
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "rest delete panic", "panic", p)
				deleteFailed.write(w)
			}
		}()
		payload, err := mutation.DeleteUpload(audit.ViaREST(r.Context()), r.Header.Get("X-Upload-Id")) // canonical: not rewritten per request
		if err != nil {
			answerTo(err).write(w)
			return
		}
		writeJSON(w, http.StatusOK, successJSON(payload.Message))
	})
}

// WriteTooManyRequests answers a request over the rate limit (the limiter
// sets Retry-After).
func WriteTooManyRequests(w http.ResponseWriter, _ *http.Request) {
	tooManyRequests.write(w)
}

// WriteIdempotencyRefusal answers a delete refused because of its
// Idempotency-Key (see internal/idempotency): the header is invalid (400),
// the key is an earlier request's that was not this one (422), or that
// request is still running (409). A credential narrower than the one that
// made the stored answer is the contract's 401 (a credential without the
// scope), any other status its 500.
func WriteIdempotencyRefusal(w http.ResponseWriter, _ *http.Request, status int, err error) {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict:
		newErrorAnswer(status, err.Error()).write(w)
	case http.StatusForbidden:
		unauthorized.write(w)
	default:
		deleteFailed.write(w)
	}
}

// SuccessBody is the body of the 200 that deletes the upload uploadIDHeader
// names (as the resolver reads it): an Idempotency-Key's answer is stored
// with the delete, before the handler writes it.
func SuccessBody(uploadIDHeader string) []byte {
	return successJSON(graph.DeletedMessage(ids.Trim(uploadIDHeader)))
}

func successJSON(message string) []byte {
	body, _ := json.Marshal(successBody{message}) // a struct of a string: cannot fail
	return body
}

type errorBody struct {
	Error string `json:"error"`
}

type successBody struct {
	Message string `json:"message"`
}

// errorAnswer is one of the contract's error responses. Their bodies are
// fixed, so each is encoded once rather than on every refusal (a 404 is
// the cheapest request there is: its encoding showed in profiles).
type errorAnswer struct {
	status int
	body   []byte
}

func newErrorAnswer(status int, message string) errorAnswer {
	body, _ := json.Marshal(errorBody{message}) // a struct of a string: cannot fail
	return errorAnswer{status, body}
}

var (
	unauthorized     = newErrorAnswer(http.StatusUnauthorized, msgUnauthorized)
	missingUploadID  = newErrorAnswer(http.StatusBadRequest, msgMissingUploadID)
	notFound         = newErrorAnswer(http.StatusNotFound, msgNotFound)
	held             = newErrorAnswer(http.StatusConflict, msgHeld)
	deleteFailed     = newErrorAnswer(http.StatusInternalServerError, msgDeleteFailed)
	methodNotAllowed = newErrorAnswer(http.StatusMethodNotAllowed, msgMethodNotAllowed)
	tooManyRequests  = newErrorAnswer(http.StatusTooManyRequests, msgTooManyRequests)
)

func (a errorAnswer) write(w http.ResponseWriter) { writeJSON(w, a.status, a.body) }

// answerTo maps the resolver's errors to the contract's table.
func answerTo(err error) errorAnswer {
	var public *graph.PublicError
	switch {
	case errors.Is(err, graph.ErrUnauthorized):
		return unauthorized
	case errors.As(err, &public) && public.Code == graph.CodeForbidden:
		// The contract has no 403: a credential that may not delete is
		// not a credential for this call.
		return unauthorized
	case errors.Is(err, graph.ErrMissingUploadID):
		return missingUploadID
	case errors.Is(err, graph.ErrUploadNotFound):
		return notFound
	case errors.Is(err, graph.ErrUploadHeld):
		return held
	default:
		return deleteFailed
	}
}

// writeJSON writes a compact JSON body, without a trailing newline, as the
// contract shows it.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
