package database

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateSQLiteFiles makes the SQLite database at path, which holds emails,
// key digests and filenames, readable by its owner only, whatever the
// directory and the umask.
//
// SQLite would create the database file 0644 less the umask. It gives the
// -wal and -shm files it makes the permissions of the database file, so
// creating that file 0600 before SQLite opens it makes them private too,
// from their first byte. Chmodding them after opening would leave a window,
// and miss the -wal and -shm files SQLite makes again on a later open.
// Files an earlier version left readable by others are tightened.
func privateSQLiteFiles(path, mode string) error {
	if mode == "ro" || mode == "memory" || path == "" || path == ":memory:" {
		return nil
	}
	if mode != "rw" { // with mode=rw the file must already exist
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			err = errors.Join(f.Chmod(0o600), f.Close()) // whatever the umask
			if err != nil {
				return fmt.Errorf("create database file: %w", err)
			}
			return nil
		case !errors.Is(err, fs.ErrExist):
			return fmt.Errorf("create database file: %w", err)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		info, err := os.Stat(p)
		if err != nil {
			continue // not there; SQLite makes it from the database file's permissions
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&0o700); err != nil {
				return fmt.Errorf("make database file private: %w", err)
			}
		}
	}
	return nil
}
