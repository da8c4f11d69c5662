package database

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deleteLike is the shape of a delete's transaction: a read, a DELETE …
// RETURNING, two INSERTs, in one BEGIN IMMEDIATE … COMMIT.
func deleteLike(db *sql.DB, id int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var owner string
	if err := tx.QueryRow("SELECT owner_id FROM uploads WHERE id = ? AND owner_id IS NOT NULL", id).Scan(&owner); err != nil {
		return err
	}
	var name string
	if err := tx.QueryRow("DELETE FROM uploads WHERE id = ? AND owner_id = ? RETURNING filename", id, owner).Scan(&name); err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO purges (upload_id, object_key, created_at) VALUES (?, ?, ?)", id, name, time.Now()); err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO events (owner_id, upload_id, kind, created_at) VALUES (?, ?, 'DELETED', ?)", owner, id, time.Now()); err != nil {
		return err
	}
	return tx.Commit()
}

func openDeleteLike(tb testing.TB, dsnParams string, rows int) *sql.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "s.db")
	db := sql.OpenDB(newSQLiteConnector(path, SQLiteDSN(path+dsnParams), func() {}))
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	for _, s := range []string{
		"CREATE TABLE uploads (id INTEGER PRIMARY KEY, owner_id TEXT NOT NULL, filename TEXT NOT NULL)",
		"CREATE TABLE purges (id INTEGER PRIMARY KEY, upload_id INTEGER, object_key TEXT, created_at DATETIME)",
		"CREATE TABLE events (id INTEGER PRIMARY KEY, owner_id TEXT, upload_id INTEGER, kind TEXT, created_at DATETIME)",
		fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d) INSERT INTO uploads SELECT i, 'usr_' || (i %% 64), 'f' || i FROM n", rows),
	} {
		if _, err := db.Exec(s); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// TestStatementCache: SQLite connections keep their statements prepared
// (the DSN asks go-sqlite3 for a cache), and a statement taken from the
// cache answers for its new arguments, not its last ones.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	if !strings.Contains(SQLiteDSN("x.db"), "_stmt_cache_size=") {
		t.Fatalf("SQLiteDSN(x.db) = %s: no statement cache", SQLiteDSN("x.db"))
	}
	db := openDeleteLike(t, "", 10)
	for id := 1; id <= 10; id++ {
		if err := deleteLike(db, id); err != nil {
			t.Fatalf("delete %d: %v", id, err)
		}
	}
	var left, events int
	if err := db.QueryRow("SELECT count(*) FROM uploads").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d uploads left (%v), want 0", left, err)
	}
	if err := db.QueryRow("SELECT count(DISTINCT upload_id) FROM events").Scan(&events); err != nil || events != 10 {
		t.Fatalf("events name %d distinct uploads (%v), want 10", events, err)
	}
}

// BenchmarkStatementCache prices compiling a delete's statements on every
// transaction: the same delete-shaped transaction on two databases, with
// go-sqlite3's statement cache (the service's DSN) and without it, the two
// sides taking turns in one process. Both commit without an fsync
// (_sync=OFF), which would otherwise be most of each side's time: this
// prices the CPU a transaction spends, which is what callers queue for
// when the writers' group commit shares one fsync among them. Reported:
// each side's transactions per second and cache/no-cache.
func BenchmarkStatementCache(b *testing.B) {
	const perTurn = 200
	sides := map[string]*sql.DB{
		"cache":    openDeleteLike(b, "?_sync=OFF", b.N*perTurn+perTurn),
		"no-cache": openDeleteLike(b, "?_sync=OFF&_stmt_cache_size=0", b.N*perTurn+perTurn),
	}
	spent := map[string]time.Duration{}
	next := 1
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := []string{"cache", "no-cache"}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, side := range order {
			start := time.Now()
			for id := next; id < next+perTurn; id++ {
				if err := deleteLike(sides[side], id); err != nil {
					b.Fatal(side, err)
				}
			}
			spent[side] += time.Since(start)
		}
		next += perTurn
	}
	per := func(side string) float64 { return float64(b.N*perTurn) / spent[side].Seconds() }
	b.ReportMetric(per("cache"), "tx/s-cache")
	b.ReportMetric(per("no-cache"), "tx/s-none")
	b.ReportMetric(per("cache")/per("no-cache"), "ratio")
}
