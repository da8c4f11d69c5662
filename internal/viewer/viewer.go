// Package viewer carries the authenticated caller through a request's context.
package viewer

import (
	"context"
	"errors"
	"time"

	"github.com/safedelete/uploads/internal/scope"
)

// ErrAnonymous is returned by FromContext when the request carried no valid
// API key: missing, malformed, unknown and revoked keys all look the same.
var ErrAnonymous = errors.New("viewer: no valid credentials")

// Viewer is the user a request acts for, and the credential it came with:
// an API key, or an access token of an identity (Issuer, Subject).
type Viewer struct {
	UserID   string
	APIKeyID string
	Issuer   string
	Subject  string
	// Scopes are what the credential may do.
	Scopes scope.Set
	// Expires is when the credential stops working (an API key's expiry,
	// an access token's exp); zero for never. A subscription ends then.
	Expires time.Time
}

// Credential names the credential that acts, for the audit trail: the API
// key's id, or "oidc:" + issuer + "#" + subject for an access token (an
// issuer has no "#", so the first one ends it). Never the secret or token.
func (v Viewer) Credential() string {
	if v.APIKeyID != "" {
		return v.APIKeyID
	}
	if v.Subject != "" {
		return "oidc:" + v.Issuer + "#" + v.Subject
	}
	return ""
}

type ctxKey struct{}

type entry struct {
	viewer Viewer
	err    error
}

// NewContext returns ctx carrying v.
func NewContext(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, ctxKey{}, entry{viewer: v})
}

// WithError returns ctx recording that the credentials could not be checked
// (the database failed), which is not the caller's fault and must not be
// reported as Unauthorized.
func WithError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, ctxKey{}, entry{err: err})
}

// FromContext returns the request's viewer, ErrAnonymous, or the error that
// prevented checking the credentials.
func FromContext(ctx context.Context) (Viewer, error) {
	e, ok := ctx.Value(ctxKey{}).(entry)
	switch {
	case !ok:
		return Viewer{}, ErrAnonymous
	case e.err != nil:
		return Viewer{}, e.err
	default:
		return e.viewer, nil
	}
}
