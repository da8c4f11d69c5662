// Package viewer carries the authenticated caller through a request's context.
package viewer

import (
	"context"
	"errors"
)

// ErrAnonymous is returned by FromContext when the request carried no valid
// API key: missing, malformed, unknown and revoked keys all look the same.
var ErrAnonymous = errors.New("viewer: no valid credentials")

// Viewer is the user a request acts for.
type Viewer struct {
	UserID   string
	APIKeyID string
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
