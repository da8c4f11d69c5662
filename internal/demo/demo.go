// Package demo fills an empty embedded database with a demo user and two
// small uploads, so that a newcomer can delete something straight away.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/viewer"
)

// Email is the demo user's address.
const Email = "demo@example.com"

var files = []struct{ name, contentType, body string }{
	{"hello.txt", "text/plain", "Hello from the upload deletion service.\n"},
	{"notes.md", "text/markdown", "# Notes\n\nDelete me through REST or GraphQL.\n"},
}

// SeedIfEmpty creates the demo user and uploads when the database has no
// users, and prints the key and ready-to-paste commands to out. The uploads
// go through the uploadFile resolver, like any client's.
func SeedIfEmpty(ctx context.Context, client *ent.Client, resolver *graph.Resolver, baseURL string, out io.Writer) error {
	n, err := client.User.Query().Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	u, key, secret, err := admin.CreateUser(ctx, client, Email)
	if err != nil {
		return fmt.Errorf("seed demo user: %w", err)
	}
	asDemo := viewer.NewContext(ctx, viewer.Viewer{UserID: u.ID, APIKeyID: key.ID})
	var uploadIDs []string
	for _, f := range files {
		up, err := resolver.Mutation().UploadFile(asDemo, graphql.Upload{
			File:        bytes.NewReader([]byte(f.body)),
			Filename:    f.name,
			Size:        int64(len(f.body)),
			ContentType: f.contentType,
		})
		if err != nil {
			return fmt.Errorf("seed demo upload: %w", err)
		}
		uploadIDs = append(uploadIDs, up.ID)
	}
	fmt.Fprintf(out, `
First start: created demo user %s with two uploads.
Demo API key (shown once): %s

Delete an upload through REST:
  curl -X DELETE "%s/delete-upload-api" -H "x-api-key: %s" -H "x-upload-id: %s"

Explore GraphQL in the playground: %s/
  (set the header {"x-api-key": "%s"})

`, Email, secret, baseURL, secret, uploadIDs[0], baseURL, secret)
	return nil
}
