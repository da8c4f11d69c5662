// Package keyfile writes the service's own secret files (the webhook key,
// the receipt signing keys): mode 0600, all at once, so that a reader or a
// crash never sees a partly written key.
package keyfile

import (
	"os"
	"path/filepath"
)

// Create writes data to a new file at path, only if there is none: through
// a temporary file hard-linked into place. A link, like O_EXCL, fails with
// fs.ErrExist when path exists, so instances starting together agree on
// one key; unlike an O_EXCL write, it never shows a partly written file.
func Create(path string, data []byte) error {
	return write(path, data, os.Link)
}

// Replace writes data to path, replacing what was there: through a
// temporary file renamed into place.
func Replace(path string, data []byte) error {
	return write(path, data, os.Rename)
}

func write(path string, data []byte, place func(tmp, path string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync() // the new name survives a power cut
		dir.Close()
	}
	return nil
}
