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
)

// DeleteUploader is the deleteUpload mutation.
type DeleteUploader interface {
	DeleteUpload(ctx context.Context, id string) (*model.DeleteUploadPayload, error)
}

// Path is where the contract serves the endpoint.
const Path = "/delete-upload-api"

// NewDeleteUploadHandler serves DELETE /delete-upload-api. It expects the
// auth middleware to have run.
func NewDeleteUploadHandler(mutation DeleteUploader, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			w.Header().Set("Allow", http.MethodDelete)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{"Method not allowed"})
			return
		}
		payload, err := mutation.DeleteUpload(r.Context(), r.Header.Get("x-upload-id"))
		if err != nil {
			status, message := statusOf(err)
			if status == http.StatusInternalServerError {
				logger.ErrorContext(r.Context(), "rest delete failed", "error", err)
			}
			writeJSON(w, status, errorBody{message})
			return
		}
		writeJSON(w, http.StatusOK, successBody{payload.Message})
	})
}

// WriteTooManyRequests answers a request over the rate limit (the limiter
// sets Retry-After).
func WriteTooManyRequests(w http.ResponseWriter) {
	writeJSON(w, http.StatusTooManyRequests, errorBody{"Too many requests"})
}

type errorBody struct {
	Error string `json:"error"`
}

type successBody struct {
	Message string `json:"message"`
}

// statusOf maps the resolver's public errors to the contract's table.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, graph.ErrUnauthorized):
		return http.StatusUnauthorized, graph.ErrUnauthorized.Message
	case errors.Is(err, graph.ErrMissingUploadID):
		return http.StatusBadRequest, graph.ErrMissingUploadID.Message
	case errors.Is(err, graph.ErrUploadNotFound):
		return http.StatusNotFound, graph.ErrUploadNotFound.Message
	default:
		return http.StatusInternalServerError, graph.ErrDeleteFailed.Message
	}
}

// writeJSON writes the body compactly, without a trailing newline, as the
// contract shows it.
func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		panic("rest: marshal response: " + err.Error()) // only fixed struct types are passed
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
