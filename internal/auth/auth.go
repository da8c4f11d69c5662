// Package auth turns the credential of a request into a viewer in its
// context, for GraphQL and REST alike: an API key (x-api-key, or
// Authorization: Bearer ukey_…), or an OpenID Connect access token
// (Authorization: Bearer with a JWT) when an issuer is configured.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/oidc"
	"github.com/safedelete/uploads/internal/signin"
	"github.com/safedelete/uploads/internal/viewer"
)

// Tokens are the access tokens accepted: their issuer's verifier and the
// map from identities to users. Nil accepts API keys only.
type Tokens struct {
	Verifier   *oidc.Verifier
	Identities *signin.Resolver
}

// Middleware authenticates each request by its `x-api-key` header or
// `Authorization: Bearer <key or token>`. Requests without a valid
// credential go on anonymous: the resolvers decide what an anonymous
// caller gets. Every refused credential looks the same to the caller.
func Middleware(keys *apikey.Authenticator, tokens *Tokens, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			secret, bearer := Credential(r.Header)
			if secret == "" {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithCredential(r.Context(), keys, tokens, logger, secret, bearer)))
		})
	}
}

// WithCredential returns ctx with the viewer of secret, an API key or (when
// bearer, as Authorization: Bearer gives it) an access token, as Middleware
// does for a request's headers; a refused credential makes ctx anonymous.
// A WebSocket's connection_init payload is checked with it.
func WithCredential(ctx context.Context, keys *apikey.Authenticator, tokens *Tokens, logger *slog.Logger, secret string, bearer bool) context.Context {
	var (
		v   viewer.Viewer
		err error
	)
	if bearer && tokens != nil && oidc.LooksLikeJWT(secret) {
		v, err = tokens.viewer(ctx, secret)
	} else {
		v, err = keyViewer(ctx, keys, secret)
	}
	switch {
	case errors.Is(err, errRefused):
		logger.DebugContext(ctx, "credential refused", "reason", err) // never the credential
		// Anonymous even when ctx held a viewer: a WebSocket's operations
		// are authenticated again, each, with what its connection holds.
		ctx = viewer.WithError(ctx, viewer.ErrAnonymous)
	case err != nil:
		logger.ErrorContext(ctx, "authenticate request", "error", err)
		ctx = viewer.WithError(ctx, err)
	default:
		ctx = viewer.NewContext(ctx, v)
	}
	return ctx
}

// errRefused marks a credential that is not accepted; other errors mean
// it could not be checked (the database failed).
var errRefused = errors.New("refused")

func keyViewer(ctx context.Context, keys *apikey.Authenticator, secret string) (viewer.Viewer, error) {
	key, err := keys.Authenticate(ctx, secret)
	switch {
	case errors.Is(err, apikey.ErrInvalid):
		return viewer.Viewer{}, errors.Join(errRefused, err)
	case err != nil:
		return viewer.Viewer{}, err
	}
	v := viewer.Viewer{UserID: key.OwnerID, APIKeyID: key.ID, Scopes: apikey.ScopesOf(key)}
	if key.ExpiresAt != nil {
		v.Expires = *key.ExpiresAt
	}
	return v, nil
}

func (t *Tokens) viewer(ctx context.Context, token string) (viewer.Viewer, error) {
	claims, err := t.Verifier.Verify(ctx, token)
	if err != nil {
		return viewer.Viewer{}, errors.Join(errRefused, err)
	}
	userID, err := t.Identities.UserOf(ctx, claims.Issuer, claims.Subject, claims.Email)
	switch {
	case errors.Is(err, signin.ErrUnknown):
		return viewer.Viewer{}, errors.Join(errRefused, err)
	case err != nil:
		return viewer.Viewer{}, err
	}
	return viewer.Viewer{UserID: userID, Issuer: claims.Issuer, Subject: claims.Subject, Scopes: claims.Scopes, Expires: claims.Expires}, nil
}

// Credential is the key or token headers carry, and whether it came
// as Authorization: Bearer (the only place a token is taken from; in
// x-api-key anything is a key). Keys are ASCII: only ASCII white space
// around one is dropped, so a key bordered by a no-break space is not the
// key (as an id bordered by one is not the id).
func Credential(h http.Header) (secret string, bearer bool) {
	// Header names in canonical form are looked up as they are; any other
	// spelling is rewritten, into a new string, on every request.
	if key := ids.Trim(h.Get("X-Api-Key")); key != "" {
		return key, false
	}
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return ids.Trim(token), true
	}
	return "", false
}
