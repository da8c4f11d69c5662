package httpserver_test

import (
	"encoding/json"
	"testing"

	"github.com/safedelete/uploads/internal/testenv"
)

// TestDocumentsOfOneShape: documents that differ only in the ids written
// into them are validated once per shape (internal/querycache), and each
// still runs with its own ids and gets its own verdict.
func TestDocumentsOfOneShape(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	var uploads []string
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		uploads = append(uploads, env.MustUpload(key, name, []byte(name)).ID)
	}
	for _, id := range uploads {
		res := env.GraphQL(key, `mutation { deleteUpload(id: "`+id+`") { deletedUploadId } }`, nil)
		var data struct {
			DeleteUpload struct{ DeletedUploadID string }
		}
		if len(res.Errors) > 0 || json.Unmarshal(res.Data, &data) != nil || data.DeleteUpload.DeletedUploadID != id {
			t.Fatalf("delete %s written into the document: %s %+v", id, res.Data, res.Errors)
		}
	}
	if n := env.Client().Upload.Query().CountX(t.Context()); n != 0 {
		t.Fatalf("%d uploads left; want every one deleted by its own document", n)
	}

	// Two fields under one alias merge only if their arguments are equal:
	// the same shape with unequal strings is still refused.
	valid := `{ a: upload(id: "upl_x") { id } a: upload(id: "upl_x") { id } }`
	if res := env.GraphQL(key, valid, nil); len(res.Errors) > 0 {
		t.Fatalf("one field twice under one alias: %+v", res.Errors)
	}
	for _, invalid := range []string{
		`{ a: upload(id: "upl_x") { id } a: upload(id: "upl_y") { id } }`,
		`{ a: upload(id: "upl_x") { id } a: upload(id: """upl_x""") { id } }`,
	} {
		res := env.GraphQL(key, invalid, nil)
		if len(res.Errors) != 1 || res.Errors[0].Code() != "GRAPHQL_VALIDATION_FAILED" || res.Data != nil {
			t.Errorf("%s\nafter %s: %s %+v; want one GRAPHQL_VALIDATION_FAILED and no data", invalid, valid, res.Data, res.Errors)
		}
	}
}
