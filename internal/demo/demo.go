// Package demo greets the first start of the service: on its own embedded
// database and bucket (or when asked) it creates a demo user and two small
// uploads, so that a newcomer can delete something straight away.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// Email is the demo user's address.
const Email = "demo@example.com"

var files = []struct{ name, contentType, body string }{
	{"hello.txt", "text/plain", "Hello from the upload deletion service.\n"},
	{"notes.md", "text/markdown", "# Notes\n\nDelete me through REST or GraphQL.\n"},
}

// Options say what a first start does.
type Options struct {
	// Seed creates the demo user and uploads. Without it, a first start
	// only says how to create a user: the bucket and database may be
	// someone's real ones.
	Seed bool
	// DataDir, when the database lives in it, is what to remove to start
	// over.
	DataDir string
}

// SeedIfEmpty greets a first start, when the database has no users: it
// creates the demo user and uploads if o.Seed, and prints the key, its
// ids and ready-to-paste commands to out. The uploads go through the
// uploadFile resolver, like any client's; the curl line names one that was
// stored, never one that failed.
func SeedIfEmpty(ctx context.Context, client *ent.Client, resolver *graph.Resolver, baseURL string, o Options, out io.Writer) error {
	n, err := client.User.Query().Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	if !o.Seed {
		_, err := fmt.Fprint(out, `
First start: the database has no users. No demo data was seeded, so that
nothing lands in a bucket or database of yours unasked (start with --demo,
or DEMO=true, for the demo user and two uploads). Create a user and a key:
  uploads users create --email you@example.com

`)
		return err
	}
	u, key, secret, err := admin.CreateUser(ctx, client, Email)
	if err != nil {
		return fmt.Errorf("seed demo user: %w", err)
	}
	asDemo := viewer.NewContext(ctx, viewer.Viewer{UserID: u.ID, APIKeyID: key.ID, Scopes: scope.All})
	var stored []string
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
		// A failed upload is returned, not an error; deleting it would
		// work, but there would be no object to show for it.
		if up.Status == upload.StatusCOMPLETED {
			stored = append(stored, up.ID)
		}
	}
	uploads := fmt.Sprintf("%d uploads", len(stored))
	if len(stored) == 1 {
		uploads = "1 upload"
	}
	fmt.Fprintf(out, "\nFirst start: created the demo user %s with %s.\n", Email, uploads)
	if failed := len(files) - len(stored); failed > 0 {
		fmt.Fprintf(out, "(%d more could not be stored; the log says why.)\n", failed)
	}
	fmt.Fprintf(out, `  user id:    %s
  API key id: %s
  API key:    %s  (shown once)
`, u.ID, key.ID, secret)
	if len(stored) > 0 {
		fmt.Fprintf(out, `
Delete an upload through REST:
  curl -X DELETE "%s/delete-upload-api" -H "x-api-key: %s" -H "x-upload-id: %s"
`, baseURL, secret, stored[0])
	} else {
		fmt.Fprint(out, "\nUpload a file in the playground, then delete it.\n")
	}
	fmt.Fprintf(out, `
Explore GraphQL in the playground: %s/
  (set the header {"x-api-key": "%s"})

Lost the key? Revoke it and issue another:
  uploads keys revoke --id %s
  uploads keys create --user %s
("uploads users list" and "uploads keys list --user USER_ID" find the ids again.)
`, baseURL, secret, key.ID, u.ID)
	if o.DataDir != "" {
		fmt.Fprintf(out, "To start over, stop the service and remove %s.\n", o.DataDir)
	}
	_, err = fmt.Fprintln(out)
	return err
}
