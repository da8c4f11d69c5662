package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestUploadsPageSize: viewer.uploads without first or last returns a page
// of DefaultPageSize, not everything; first or last above MaxPageSize is
// BAD_USER_INPUT saying so (not a complexity error); a page of the maximum
// fits the default complexity limit; the schema documents both numbers.
func TestUploadsPageSize(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.GraphQLComplexityLimit = config.Defaults().GraphQLComplexityLimit
	}})
	userID, key := env.NewUser()
	const stored = graph.MaxPageSize + 5
	records := make([]*ent.UploadCreate, stored)
	for i := range records {
		records[i] = env.Client().Upload.Create().SetOwnerID(userID).SetFilename(fmt.Sprintf("f%03d.txt", i)).
			SetContentType("text/plain").SetSize(1).SetStatus(upload.StatusCOMPLETED)
	}
	env.Client().Upload.CreateBulk(records...).ExecX(t.Context())

	over := graph.MaxPageSize + 1
	rows := []struct {
		name, arguments string
		wantEdges       int
		wantNextPage    bool
		wantError       string
	}{
		{"neither first nor last: the default page", ``, graph.DefaultPageSize, true, ""},
		{"first", `(first: 3)`, 3, true, ""},
		{"last", `(last: 3)`, 3, false, ""},
		{"first: the maximum", fmt.Sprintf(`(first: %d)`, graph.MaxPageSize), graph.MaxPageSize, true, ""},
		{"first over the maximum", fmt.Sprintf(`(first: %d)`, over), 0, false, graph.ErrPageTooLarge.Message},
		{"last over the maximum", fmt.Sprintf(`(last: %d)`, over), 0, false, graph.ErrPageTooLarge.Message},
		{"first: 100000", `(first: 100000)`, 0, false, graph.ErrPageTooLarge.Message},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			// A page costs its size times the fields per upload (totalCount and
			// pageInfo included): these fit the default complexity limit.
			res := env.GraphQL(key, `{ viewer { uploads`+row.arguments+` {
				totalCount pageInfo { hasNextPage } edges { node { id filename status } }
			} } }`, nil)
			if row.wantError != "" {
				if len(res.Errors) != 1 || res.Errors[0].Code() != graph.CodeBadUserInput || res.Errors[0].Message != row.wantError {
					t.Errorf("errors = %+v, want one BAD_USER_INPUT %q", res.Errors, row.wantError)
				}
				return
			}
			var data struct {
				Viewer struct {
					Uploads struct {
						TotalCount int
						PageInfo   struct{ HasNextPage bool }
						Edges      []struct{ Node struct{ ID string } }
					}
				}
			}
			if len(res.Errors) > 0 || res.Decode(&data) != nil {
				t.Fatalf("status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
			}
			got := data.Viewer.Uploads
			if len(got.Edges) != row.wantEdges || got.TotalCount != stored || got.PageInfo.HasNextPage != row.wantNextPage {
				t.Errorf("%d edges of %d, hasNextPage %v; want %d of %d, %v",
					len(got.Edges), got.TotalCount, got.PageInfo.HasNextPage, row.wantEdges, stored, row.wantNextPage)
			}
		})
	}

	description := graph.ServedSchema().Query.Fields.ForName("viewer").Description
	for _, n := range []int{graph.DefaultPageSize, graph.MaxPageSize} {
		if !strings.Contains(description, fmt.Sprintf(" %d", n)) {
			t.Errorf("Query.viewer's description does not mention %d:\n%s", n, description)
		}
	}
}
