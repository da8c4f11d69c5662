package database

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// TestExplainStartError: the errors of a start on a full disk say what to
// do; others are left as they are.
func TestExplainStartError(t *testing.T) {
	t.Parallel()
	const lite = "sqlite:///srv/uploads/uploads.db?mode=rwc"
	const pg = "postgres://u@db.example/uploads"
	full := "the disk holding /srv/uploads is full: free space on it, then start again"
	for _, c := range []struct {
		name, url string
		err       error
		want      string // "" for the error unchanged
	}{
		{"SQLITE_FULL", lite, fmt.Errorf("migrate: %w", sqlite3.Error{Code: sqlite3.ErrFull}), full},
		{"disk I/O error, ENOSPC", lite, fmt.Errorf("migrate: %w", sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.ENOSPC}), full},
		{"disk I/O error", lite, fmt.Errorf("migrate: %w", sqlite3.Error{Code: sqlite3.ErrIoErr}),
			"the volume holding /srv/uploads is probably full (or failing): free space on it (df /srv/uploads), then start again"},
		{"ENOSPC creating the file", lite, fmt.Errorf("create database file: %w", syscall.ENOSPC), full},
		{"PostgreSQL disk_full", pg, fmt.Errorf("migrate: %w", &pgconn.PgError{Code: "53100"}),
			"the disk holding the PostgreSQL server's data directory is full: free space on it, then start again"},
		{"SQLITE_BUSY", lite, fmt.Errorf("migrate: %w", sqlite3.Error{Code: sqlite3.ErrBusy}), ""},
		{"PostgreSQL refused", pg, errors.New("connection refused"), ""},
	} {
		got := explainStartError(c.err, c.url)
		switch {
		case c.want == "" && got != c.err:
			t.Errorf("%s: %v, want the error unchanged", c.name, got)
		case c.want != "" && (!strings.HasPrefix(got.Error(), c.err.Error()+": ") || !strings.HasSuffix(got.Error(), c.want) || !errors.Is(got, c.err)):
			t.Errorf("%s: %q, want %q after the cause", c.name, got, c.want)
		}
	}
}
