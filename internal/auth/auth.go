// Package auth turns the API key of a request into a viewer in its context,
// for GraphQL and REST alike.
package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/viewer"
)

// Middleware authenticates each request by its `x-api-key` header or
// `Authorization: Bearer <key>`. Requests without a valid key go on
// anonymous: the resolvers decide what an anonymous caller gets.
func Middleware(client *ent.Client, logger *slog.Logger) func(http.Handler) http.Handler {
	keys := apikey.NewAuthenticator(client)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			secret := credential(r)
			if secret == "" {
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			key, err := keys.Authenticate(ctx, secret)
			switch {
			case errors.Is(err, apikey.ErrInvalid):
				// anonymous
			case err != nil:
				logger.ErrorContext(ctx, "authenticate request", "error", err)
				ctx = viewer.WithError(ctx, err)
			default:
				ctx = viewer.NewContext(ctx, viewer.Viewer{UserID: key.OwnerID, APIKeyID: key.ID})
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// credential is the key a request carries. Keys are ASCII: only ASCII white
// space around one is dropped, so a key bordered by a no-break space is not
// the key (as an id bordered by one is not the id).
func credential(r *http.Request) string {
	// Header names in canonical form are looked up as they are; any other
	// spelling is rewritten, into a new string, on every request.
	if key := ids.Trim(r.Header.Get("X-Api-Key")); key != "" {
		return key
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return ids.Trim(token)
	}
	return ""
}
