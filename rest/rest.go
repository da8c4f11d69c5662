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

	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/audit"
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
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{msgMethodNotAllowed})
			return
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "rest delete panic", "panic", p)
				writeJSON(w, http.StatusInternalServerError, errorBody{msgDeleteFailed})
			}
		}()
		payload, err := mutation.DeleteUpload(audit.WithVia(r.Context(), auditevent.ViaREST), r.Header.Get("x-upload-id"))
		if err != nil {
			status, message := statusOf(err)
			writeJSON(w, status, errorBody{message})
			return
		}
		writeJSON(w, http.StatusOK, successBody{payload.Message})
	})
}

// WriteTooManyRequests answers a request over the rate limit (the limiter
// sets Retry-After).
func WriteTooManyRequests(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusTooManyRequests, errorBody{msgTooManyRequests})
}

type errorBody struct {
	Error string `json:"error"`
}

type successBody struct {
	Message string `json:"message"`
}

// statusOf maps the resolver's errors to the contract's table.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, graph.ErrUnauthorized):
		return http.StatusUnauthorized, msgUnauthorized
	case errors.Is(err, graph.ErrMissingUploadID):
		return http.StatusBadRequest, msgMissingUploadID
	case errors.Is(err, graph.ErrUploadNotFound):
		return http.StatusNotFound, msgNotFound
	default:
		return http.StatusInternalServerError, msgDeleteFailed
	}
}

// writeJSON writes the body compactly, without a trailing newline, as the
// contract shows it.
func writeJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body) // only structs of strings are passed: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
