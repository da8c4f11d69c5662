package embeds3

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// stagingDir holds bodies being received and metadata about to be
	// renamed into place; nothing in it is an object.
	stagingDir = ".staging"
	// stagingLock is held shared by every server running over the
	// directory, so that one starting alone knows the staging files are
	// left over from a dead process.
	stagingLock = ".staging.lock"
	// sweptMarker says that every data file here was committed after its
	// metadata, so one without metadata can no longer be left by a write.
	sweptMarker = ".metadata-first"
)

// openStaging takes the store's staging directory into use and returns the
// lock to hold while serving. A server that starts alone first removes
// what dead ones left in staging, and, once per directory, the data files
// that s3afero left without metadata.
func (s *store) openStaging() (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(s.dir, stagingLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := s.cleanIfAlone(lock); err != nil {
		lock.Close()
		return nil, err
	}
	if err := lockShared(lock); err != nil {
		lock.Close()
		return nil, err
	}
	if err := os.MkdirAll(s.staging, 0o700); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

func (s *store) cleanIfAlone(lock *os.File) error {
	alone, err := tryLockExclusive(lock)
	if err != nil || !alone {
		return err
	}
	if err := os.RemoveAll(s.staging); err != nil {
		return err
	}
	if err := os.Mkdir(s.staging, 0o700); err != nil {
		return err
	}
	marker := filepath.Join(s.dir, sweptMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := s.removeDataWithoutMeta(); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte("Data files here appear only after their metadata.\n"), 0o600)
}

// removeDataWithoutMeta removes the data files that have no readable
// metadata: s3afero wrote metadata last, so these are bodies whose PUT was
// cut off or killed and never answered with success.
func (s *store) removeDataWithoutMeta() error {
	buckets, err := s.ListBuckets()
	if err != nil {
		return err
	}
	for _, b := range buckets {
		root := s.bucketPath(b.Name)
		err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(root, name)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			m, err := s.metaFor(b.Name, filepath.ToSlash(rel), info)
			if err != nil || m != nil {
				return err
			}
			return os.Remove(name)
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
