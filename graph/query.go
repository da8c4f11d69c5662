package graph

import (
	"context"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/scope"
)

// myUpload returns the caller's upload, or nil when it is missing or someone
// else's: the two cases must look the same.
func (r *Resolver) myUpload(ctx context.Context, uploadID string) (*ent.Upload, error) {
	v, err := requireScope(ctx, scope.UploadsRead)
	if err != nil {
		return nil, err
	}
	if !ids.Valid(ids.UploadPrefix, uploadID) {
		return nil, nil
	}
	u, err := r.client.Upload.Query().
		Where(upload.ID(uploadID), upload.OwnerID(v.UserID)).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// me returns the caller's user record.
func (r *Resolver) me(ctx context.Context) (*ent.User, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.client.User.Get(ctx, v.UserID)
}

// node resolves a Relay id the caller may see: their own user or one of
// their uploads or deletion jobs. Anything else is null, exactly like an unknown id.
func (r *Resolver) node(ctx context.Context, id string) (ent.Noder, error) {
	v, err := requireViewer(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(id, ids.UploadPrefix):
		return nilIfMissing(r.myUpload(ctx, id))
	case strings.HasPrefix(id, ids.JobPrefix):
		return nilIfMissing(r.myJob(ctx, id))
	case id == v.UserID:
		return nilIfMissing(r.client.User.Query().Where(user.ID(id)).Only(ctx))
	default:
		return nil, nil
	}
}

// nilIfMissing turns a typed nil or a not-found error into an untyped nil
// Noder, so GraphQL shows null.
func nilIfMissing[T interface {
	ent.Noder
	comparable
}](n T, err error) (ent.Noder, error) {
	var zero T
	if ent.IsNotFound(err) || (err == nil && n == zero) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}
