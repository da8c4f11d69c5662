package graph_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/safedelete/uploads/graph"
)

var update = flag.Bool("update", false, "rewrite api.graphql from the served schema")

// TestPublishedSchema fails when the schema the server serves differs from
// the committed api.graphql, so that every change to the public API shows up
// in review. After a deliberate change: go test ./graph -run TestPublishedSchema -update
func TestPublishedSchema(t *testing.T) {
	t.Parallel()
	schema := graph.ServedSchema()
	var served bytes.Buffer
	formatter.NewFormatter(&served).FormatSchema(schema)
	if *update {
		if err := os.WriteFile("api.graphql", served.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile("api.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served.Bytes(), committed) {
		t.Errorf("the served schema differs from graph/api.graphql; if the change is deliberate, run\n" +
			"  go test ./graph -run TestPublishedSchema -update\nand commit the file")
	}
}
