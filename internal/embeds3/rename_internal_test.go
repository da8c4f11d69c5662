package embeds3

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestRenameIntoADirectoryThatWent: a PUT's rename into a directory that
// another process's server removed (it deleted the last key beside) makes
// the directory again and succeeds; a staged file that is gone is an
// error, at once.
func TestRenameIntoADirectoryThatWent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staged := filepath.Join(dir, "staged")
	if err := os.WriteFile(staged, []byte("body"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "bucket", "prefix", "key") // bucket/prefix: made, then removed by the other server

	if err := renameIntoDir(staged, name); err != nil {
		t.Fatalf("rename into a directory that went: %v", err)
	}
	if body, err := os.ReadFile(name); err != nil || string(body) != "body" {
		t.Errorf("%s reads %q, %v", name, body, err)
	}
	if err := renameIntoDir(staged, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rename of a staged file that is gone: %v, want it not to exist", err)
	}
}
