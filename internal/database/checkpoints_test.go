package database

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
)

// bigCommit is a transaction of about 2,000 pages: twice SQLite's default
// size for a checkpoint, a fifth of walBackstop.
const bigCommit = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) " +
	"INSERT INTO filler (b) SELECT randomblob(4000) FROM n"

const bigCommitBytes = 2000 * 4000

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// TestCommitsLeaveCheckpointsToTheCheckpointer: a commit that takes the WAL
// past SQLite's default checkpoint size (1,000 pages) returns without
// copying the WAL into the database file itself (the writer's time is the
// delete's, not the checkpoint's); the pages are in the WAL, and durable
// there.
func TestCommitsLeaveCheckpointsToTheCheckpointer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.db")
	var woken atomic.Int32
	db := sql.OpenDB(newSQLiteConnector(path, SQLiteDSN(path), func() { woken.Add(1) }))
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE filler (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil || pages != walBackstop {
		t.Fatalf("PRAGMA wal_autocheckpoint = %d, %v; want %d", pages, err, walBackstop)
	}
	before := woken.Load()
	if _, err := db.Exec(bigCommit); err != nil {
		t.Fatal(err)
	}
	if woken.Load() == before {
		t.Error("the commit did not wake the checkpointer")
	}
	if size := fileSize(t, path); size >= bigCommitBytes {
		t.Errorf("the database file is %d bytes right after the commit: the commit checkpointed itself", size)
	}
	if size := fileSize(t, path+"-wal"); size < bigCommitBytes {
		t.Errorf("the WAL is %d bytes after a commit of %d: the commit is not in it", size, bigCommitBytes)
	}
}

// TestCheckpointerCopiesTheWALBack: with the service's own wiring (Open),
// the pages a transaction's commit left in the WAL reach the database file
// soon after, without another write; and closing stops the checkpointer.
func TestCheckpointerCopiesTheWALBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	client, err := Open(ctx, SQLiteURL(path))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.ExecContext(ctx, "CREATE TABLE filler (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	err = WithTx(ctx, client, func(tx *ent.Tx) error {
		_, err := tx.ExecContext(ctx, bigCommit)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for fileSize(t, path) < bigCommitBytes {
		if time.Now().After(deadline) {
			t.Fatalf("2 s after a commit of %d bytes, the database file is %d bytes: nothing checkpointed it",
				bigCommitBytes, fileSize(t, path))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	_ = client.Close() // a second Close must not panic (closing a closed channel)
}
