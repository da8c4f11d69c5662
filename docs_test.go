package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/safedelete/uploads/internal/config"
)

// TestSettingsDocumented: every setting appears in the table of
// docs/operations.md with its default.
func TestSettingsDocumented(t *testing.T) {
	const doc = "docs/operations.md"
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings() {
		row := "| `" + s.Env + "` | `--" + s.Flag + "` |"
		i := bytes.Index(text, []byte(row))
		if i < 0 {
			t.Errorf("%s has no row starting %q", doc, row)
			continue
		}
		line, _, _ := bytes.Cut(text[i+len(row):], []byte("\n"))
		if s.Default != "" && !bytes.HasPrefix(bytes.TrimSpace(line), []byte("`"+s.Default+"`")) {
			t.Errorf("%s's row of %s does not give its default `%s`: %s", doc, s.Env, s.Default, line)
		}
	}
}
