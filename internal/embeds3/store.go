package embeds3

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// store is the gofakes3 backend: objects as files under a directory, laid
// out as gofakes3's s3afero backend lays them out, so that data written by
// earlier versions stays readable:
//
//	buckets/BUCKET/KEY                      the object's bytes
//	metadata/BUCKET/FLATKEY-FNV128A         JSON: size, mtime, MD5, headers
//
// Unlike s3afero, which writes the object in place and its metadata after
// it, a PUT receives the body into .staging/ and commits by renaming, on the
// same filesystem: first the metadata, then the object. A cut-off body or a
// crash at any instant therefore leaves no object that a listing could see,
// and every object a listing can see has its metadata.
type store struct {
	// mu makes commits and deletes exclusive; reads share it. Bodies are
	// received without it, so a slow client holds up no one.
	mu      sync.RWMutex
	dir     string
	staging string

	// freeing carries the files that deletes took out of sight to the
	// goroutine that removes them (startFreeing), so that a delete is
	// answered once its object is gone from view, not once its space is
	// back; stop ends that goroutine, which first removes what waits.
	freeing chan []string
	waiting atomic.Int64 // files sent to freeing and not yet removed
	stop    chan struct{}
	freed   sync.WaitGroup
}

// objectMeta has the fields of s3afero.Metadata: the files are the same.
type objectMeta struct {
	File    string
	ModTime time.Time
	Size    int64
	Hash    []byte
	Meta    map[string]string
}

var _ gofakes3.Backend = (*store)(nil)

func newStore(dir string) (*store, error) {
	s := &store{dir: dir, staging: filepath.Join(dir, stagingDir), freeing: make(chan []string, freeingQueue), stop: make(chan struct{})}
	for _, sub := range []string{"buckets", "metadata"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *store) bucketPath(bucket string) string {
	return filepath.Join(s.dir, "buckets", bucket)
}

func (s *store) dataPath(bucket, key string) string {
	return filepath.Join(s.bucketPath(bucket), filepath.FromSlash(key))
}

// metaPath names a key's metadata file exactly as s3afero does.
func (s *store) metaPath(bucket, key string) string {
	h := fnv.New128a()
	h.Write([]byte(key))
	flat := strings.NewReplacer("/", "_", `\`, "_").Replace(key)
	return filepath.Join(s.dir, "metadata", bucket, flat+"-"+hex.EncodeToString(h.Sum(nil)))
}

// canonicalKey reports whether key names a file inside its bucket and is
// listed back as itself: no empty, "." or ".." segment, no trailing slash.
func canonicalKey(key string) bool {
	return key != "" && !strings.HasSuffix(key, "/") && !strings.ContainsRune(key, 0) &&
		path.Clean("/"+key) == "/"+key
}

// notFound reports whether err means the file is not there, including a
// key whose parent "directory" is another object's file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func (s *store) bucketExists(bucket string) (bool, error) {
	if gofakes3.ValidateBucketName(bucket) != nil {
		return false, nil
	}
	info, err := os.Stat(s.bucketPath(bucket))
	if notFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return info.IsDir(), nil
}

func (s *store) requireBucket(bucket string) error {
	exists, err := s.bucketExists(bucket)
	if err != nil {
		return err
	} else if !exists {
		return gofakes3.BucketNotFound(bucket)
	}
	return nil
}

// metaFor returns the metadata of the object whose data file is data, or
// nil when it has none: the file is then a write that never completed
// (only s3afero, which wrote metadata last, left such files) and is not an
// object. Metadata describing other bytes than the file's (a copy that did
// not keep mtimes, or a crash between the two renames of an overwrite) is
// brought up to date: the file is a complete object.
func (s *store) metaFor(bucket, key string, data fs.FileInfo) (*objectMeta, error) {
	metaPath := s.metaPath(bucket, key)
	raw, err := os.ReadFile(metaPath)
	if notFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var m objectMeta
	if json.Unmarshal(raw, &m) != nil {
		return nil, nil // s3afero died while writing it, after the data
	}
	if len(m.Hash) > 0 && m.Size == data.Size() && m.ModTime.Equal(data.ModTime()) {
		return &m, nil
	}
	if m.Hash, err = hashFile(s.dataPath(bucket, key)); err != nil {
		return nil, err
	}
	m.File, m.Size, m.ModTime = path.Join(bucket, key), data.Size(), data.ModTime()
	staged, err := s.stageMeta(&m)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(staged, metaPath); err != nil {
		_ = os.Remove(staged)
		return nil, err
	}
	return &m, nil
}

func hashFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// ListBuckets lists the bucket directories.
func (s *store) ListBuckets() ([]gofakes3.BucketInfo, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "buckets"))
	if err != nil {
		return nil, err
	}
	buckets := []gofakes3.BucketInfo{}
	for _, e := range entries {
		if !e.IsDir() || gofakes3.ValidateBucketName(e.Name()) != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		buckets = append(buckets, gofakes3.BucketInfo{Name: e.Name(), CreationDate: gofakes3.NewContentTime(info.ModTime())})
	}
	return buckets, nil
}

// ListBucket lists the objects matching prefix, all in one page (gofakes3
// then ignores the requested page size, as it did with s3afero). Files
// without metadata are skipped: they are not objects.
func (s *store) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	if !page.IsEmpty() {
		return nil, gofakes3.ErrInternalPageNotImplemented
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.list(bucket, prefix)
}

func (s *store) list(bucket string, prefix *gofakes3.Prefix) (*gofakes3.ObjectList, error) {
	if err := s.requireBucket(bucket); err != nil {
		return nil, err
	}
	root := s.bucketPath(bucket)
	start := root // walk only the directory the prefix is in, when it names one
	if i := strings.LastIndex(prefix.Prefix, "/"); prefix.HasPrefix && i > 0 && canonicalKey(prefix.Prefix[:i]) {
		start = s.dataPath(bucket, prefix.Prefix[:i])
	}
	list := gofakes3.NewObjectList()
	err := filepath.WalkDir(start, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) {
				return nil // no such directory, or removed meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		var match gofakes3.PrefixMatch
		if !prefix.Match(key, &match) {
			return nil
		}
		info, err := d.Info()
		if notFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		m, err := s.metaFor(bucket, key, info)
		if err != nil || m == nil {
			return err
		}
		if match.CommonPrefix {
			list.AddPrefix(match.MatchedPart)
			return nil
		}
		list.Add(&gofakes3.Content{
			Key:          key,
			LastModified: gofakes3.NewContentTime(info.ModTime()),
			ETag:         gofakes3.FormatETag(m.Hash),
			Size:         info.Size(),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// S3 lists in byte order of keys; a walk goes directory by directory.
	slices.SortFunc(list.Contents, func(a, b *gofakes3.Content) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(list.CommonPrefixes, func(a, b gofakes3.CommonPrefix) int { return strings.Compare(a.Prefix, b.Prefix) })
	return list, nil
}

// CreateBucket makes the bucket's directory.
func (s *store) CreateBucket(name string) error {
	if err := gofakes3.ValidateBucketName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Mkdir(s.bucketPath(name), 0o700)
	if errors.Is(err, fs.ErrExist) {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	return err
}

// BucketExists reports whether the bucket's directory exists.
func (s *store) BucketExists(name string) (bool, error) {
	return s.bucketExists(name)
}

// DeleteBucket removes an empty bucket, with any files that are not objects.
func (s *store) DeleteBucket(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.list(name, &gofakes3.Prefix{})
	if err != nil {
		return err
	}
	if len(list.Contents) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	return s.removeBucketLocked(name)
}

// ForceDeleteBucket removes a bucket and everything in it.
func (s *store) ForceDeleteBucket(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireBucket(name); err != nil {
		return err
	}
	return s.removeBucketLocked(name)
}

func (s *store) removeBucketLocked(name string) error {
	if err := os.RemoveAll(s.bucketPath(name)); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(s.dir, "metadata", name))
}
