//go:build unix

package database_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/safedelete/uploads/internal/database"
)

// TestDatabaseFilesPrivate: the SQLite file and the -wal and -shm files
// SQLite makes beside it are readable by their owner only, under the usual
// umask and in a directory others can read, whether the database is new or
// was left world-readable by an earlier version.
func TestDatabaseFilesPrivate(t *testing.T) {
	// Serial: it sets the process's umask.
	defer syscall.Umask(syscall.Umask(0o022))
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.db")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.db"), old} {
		client, err := database.Open(context.Background(), database.SQLiteURL(path))
		if err != nil {
			t.Fatal(err)
		}
		// While it is open (-wal and -shm are removed on close).
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			info, err := os.Stat(p)
			if err != nil {
				t.Error(err)
				continue
			}
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), perm)
			}
		}
		client.Close()
	}
}
