package database

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// diskFull is the answer to an open that failed for want of disk space,
// worded for the operator: what is full, and what to do. Restarting on a
// full disk used to say only "migrate: disk I/O error".
type diskFull struct {
	err    error
	where  string // the file or server whose disk is full
	likely bool   // an I/O error that a full disk is the likeliest cause of
}

func (e *diskFull) Error() string {
	if e.likely {
		return fmt.Sprintf("%v: the volume holding %s is probably full (or failing): free space on it (df %s), then start again",
			e.err, e.where, e.where)
	}
	return fmt.Sprintf("%v: the disk holding %s is full: free space on it, then start again", e.err, e.where)
}

func (e *diskFull) Unwrap() error { return e.err }

// explainStartError words an error of opening databaseURL whose cause is a
// full disk; others it returns as they are. SQLite says SQLITE_FULL when a
// write finds the disk full, but only "disk I/O error" when it cannot grow
// its shared-memory (-shm) file, which is the first write of every start;
// nothing but the disk can be at fault then, so it is worded as a full
// disk, probably.
func explainStartError(err error, databaseURL string) error {
	if err == nil {
		return nil
	}
	where := "the PostgreSQL server's data directory"
	if path, ok := strings.CutPrefix(databaseURL, "sqlite://"); ok {
		path, _, _ = strings.Cut(path, "?")
		where = filepath.Dir(path)
	}
	var lite sqlite3.Error
	var pg *pgconn.PgError
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT),
		errors.As(err, &lite) && (lite.Code == sqlite3.ErrFull || lite.SystemErrno == syscall.ENOSPC || lite.SystemErrno == syscall.EDQUOT),
		errors.As(err, &pg) && pg.Code == "53100": // disk_full
		return &diskFull{err: err, where: where}
	case errors.As(err, &lite) && lite.Code == sqlite3.ErrIoErr:
		return &diskFull{err: err, where: where, likely: true}
	}
	return err
}
