package database_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/safedelete/uploads/internal/database"
)

// TestRestartOnFullDisk: a restart whose disk is full fails with an error
// that says what to do (free space on the volume, start again), not only
// "migrate: disk I/O error". The full disk is played by a file size limit
// (RLIMIT_FSIZE, which needs no privileges): as on a full disk, SQLite
// cannot grow its shared-memory file, the first write of every start. The
// limit is set in a child process, so that this one keeps writing.
func TestRestartOnFullDisk(t *testing.T) {
	t.Parallel()
	if path := os.Getenv("FULL_DISK_DATABASE"); path != "" {
		var limit syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatal(err)
		}
		limit.Cur = 1024 // below the 32 KiB of the -shm file
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatal(err)
		}
		client, err := database.Open(context.Background(), database.SQLiteURL(path))
		if err == nil {
			client.Close()
			t.Fatal("opened")
		}
		os.Stdout.WriteString("open: " + err.Error() + "\n")
		return
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "uploads.db")
	client, err := database.Open(context.Background(), database.SQLiteURL(path))
	if err != nil {
		t.Fatal(err)
	}
	client.Close() // the last connection removes the -wal and -shm files
	if _, err := os.Stat(path + "-shm"); !os.IsNotExist(err) {
		t.Fatalf("the -shm file outlived the database's close: %v", err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestRestartOnFullDisk$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FULL_DISK_DATABASE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the restart with its disk full: %v\n%s", err, out)
	}
	if want := "free space on it"; !strings.Contains(string(out), want) || !strings.Contains(string(out), dir) {
		t.Errorf("the restart's error does not say to free space on the volume holding %s:\n%s", dir, out)
	}
	t.Logf("%s", out)
}
