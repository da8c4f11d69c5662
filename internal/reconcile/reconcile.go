// Package reconcile compares the bucket with the database and reports where
// they drifted apart:
//   - orphaned objects: objects that no upload record and no pending purge
//     names;
//   - orphaned multipart uploads: incomplete multipart uploads of keys that
//     no upload record and no pending purge names (their parts cost storage
//     but are invisible to object listings);
//   - missing objects: COMPLETED uploads whose object is gone;
//   - stuck uploads: PENDING uploads older than the upload timeout plus
//     StuckMargin, left behind by a crash mid-upload;
//   - unmirrored holds: on a bucket with S3 Object Lock, held uploads whose
//     object has a version without the legal hold (internal/objectlock);
//     Repair queues a note for the service's mirror.
//
// Repair only ever queues orphans (objects and multipart uploads) for the
// normal purger (package purge); it deletes nothing itself, so every
// deletion still passes the purger's check that no upload references the
// key. Missing objects and stuck uploads are only reported: the service's
// janitor marks stuck uploads FAILED and purges them. The bucket must belong
// to this service alone: an object or multipart upload without a record in
// this database is garbage to reconcile, whoever wrote it.
//
// Not compared: noncurrent versions on a versioned bucket, records of other
// buckets, and, on servers that do not implement ListMultipartUploads,
// multipart uploads (the report says so). A server that answers the
// listing with an empty list while it holds uploads cannot be told apart.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/purge"
)

// DefaultGrace is how old an orphan must be before Repair queues it.
const DefaultGrace = time.Hour

// StuckMargin is how long past the upload timeout a PENDING upload is given
// before it counts as stuck: a request S3 is still finishing may land a
// little late. It is the purger's margin for the same question, so that
// what reconcile calls stuck is what the purger treats as stopped.
const StuckMargin = purge.PendingMargin

// DefaultPageSize is how many objects one listing request and how many
// records one query return.
const DefaultPageSize = 1000

// PurgeUploadID is the upload_id of the purges Run queues: no upload was
// deleted, and operators reading the queue see who queued them.
const PurgeUploadID = "reconcile"

// Options tune a run. Zero values take the defaults.
type Options struct {
	// Repair queues orphans older than Grace for purge; otherwise Run only
	// reports.
	Repair bool
	// Grace is the age, by an object's LastModified or a multipart upload's
	// Initiated, below which an orphan is left alone: something written a
	// moment ago may belong to a write this run did not see the start of.
	// Zero (or less) means DefaultGrace; a forgotten option must not make
	// young objects eligible.
	Grace time.Duration
	// UploadTimeout is the service's upload timeout (UPLOAD_TIMEOUT): a
	// PENDING upload older than UploadTimeout + StuckMargin is stuck.
	// Required: Run refuses zero, as any default would misjudge a service
	// configured otherwise.
	UploadTimeout time.Duration
	// Now is the clock that ages objects, multipart uploads and records;
	// default time.Now. Purges are still queued due at the real time, which
	// is the purger's clock.
	Now func() time.Time
	// PageSize bounds each listing request and each record query; default
	// DefaultPageSize (S3 returns at most 1000 keys a request anyway).
	PageSize int
}

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	return o
}

// ErrNoUploadTimeout is returned by Run when Options.UploadTimeout is not
// set.
var ErrNoUploadTimeout = errors.New("reconcile: the upload timeout is required to tell stuck uploads")

// Run compares store's bucket with the upload records and pending purges in
// client, and with opts.Repair queues old orphans for purge. Any error of S3
// or the database ends the run with no report: a failed listing must never
// read as "every object is missing". A run that failed half-way through a
// repair can simply be run again: what it queued is no longer an orphan.
//
// It holds one entry per distinct object key of the bucket's records and
// pending purges in memory, and the orphans it reports; records, purges and
// the listings are read a page at a time.
func Run(ctx context.Context, client *ent.Client, store *objectstore.Store, opts Options) (*Report, error) {
	if opts.UploadTimeout <= 0 {
		return nil, ErrNoUploadTimeout
	}
	opts = opts.withDefaults()
	bucket := store.Bucket()
	now := opts.Now()
	report := &Report{
		Bucket:                   bucket,
		CheckedAt:                now,
		Repair:                   opts.Repair,
		GraceSeconds:             opts.Grace.Seconds(),
		StuckAfterSeconds:        (opts.UploadTimeout + StuckMargin).Seconds(),
		OrphanedObjects:          []OrphanedObject{},
		OrphanedMultipartUploads: []OrphanedMultipartUpload{},
		MissingObjects:           []MissingObject{},
		StuckUploads:             []StuckUpload{},
		UnmirroredHolds:          []UnmirroredHold{},
	}

	// The database is read before the bucket is listed. Records are written
	// before their object (and before its multipart upload), so an object
	// listed afterwards whose record came too late for the snapshot is only
	// a candidate, looked up again below.
	refs, err := loadReferences(ctx, client, bucket, opts.PageSize, report)
	if err != nil {
		return nil, err
	}
	objects, err := listUnreferenced(ctx, store.Client(), bucket, opts.PageSize, refs, report)
	if err != nil {
		return nil, err
	}
	multipart, err := listUnreferencedMultipart(ctx, store.Client(), bucket, opts.PageSize, refs, report)
	if err != nil {
		return nil, err
	}
	if err := settleOrphans(ctx, client, bucket, groupByKey(objects, multipart), now, opts, report); err != nil {
		return nil, err
	}
	if err := findMissing(ctx, client, store, bucket, refs, report); err != nil {
		return nil, err
	}
	deadline := now.Add(-opts.UploadTimeout - StuckMargin)
	if err := findStuck(ctx, client, bucket, deadline, opts.PageSize, refs, report); err != nil {
		return nil, err
	}
	if err := findUnmirroredHolds(ctx, client, store, bucket, now, opts.Repair, report); err != nil {
		return nil, err
	}
	return report, nil
}

// keyRef is what the database says about one object key.
type keyRef struct {
	completed bool // a COMPLETED record names it: the object must exist
	listed    bool // the listing saw the object
	multipart int  // incomplete multipart uploads listed under it
}

// references holds every object key of the bucket that a record or a
// pending purge names.
type references map[string]*keyRef

func (refs references) add(key string) *keyRef {
	r := refs[key]
	if r == nil {
		r = &keyRef{}
		refs[key] = r
	}
	return r
}

// loadReferences reads, a page at a time, every record and pending purge
// naming an object in bucket. Records are read before purges: a delete
// removes the record and writes its purge in one transaction, so an object
// being deleted is always seen under one or the other.
func loadReferences(ctx context.Context, client *ent.Client, bucket string, pageSize int, report *Report) (references, error) {
	refs := references{}
	scanned, err := refs.addRecords(ctx, client, bucket, pageSize)
	if err != nil {
		return nil, err
	}
	report.RecordsScanned = scanned
	if err := refs.addPurges(ctx, client, bucket, pageSize); err != nil {
		return nil, err
	}
	others, err := client.Upload.Query().
		Where(upload.BucketNEQ(bucket), upload.BucketNEQ(""), upload.ObjectKeyNEQ("")).
		Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count records of other buckets: %w", err)
	}
	report.RecordsInOtherBuckets = others
	return refs, nil
}

// addRecords adds the keys of the bucket's upload records, paging by id,
// and returns how many records it read.
func (refs references) addRecords(ctx context.Context, client *ent.Client, bucket string, pageSize int) (int, error) {
	scanned := 0
	for lastID := ""; ; {
		page, err := client.Upload.Query().
			Where(upload.Bucket(bucket), upload.ObjectKeyNEQ(""), upload.IDGT(lastID)).
			Order(upload.ByID()).
			Limit(pageSize).
			Select(upload.FieldID, upload.FieldObjectKey, upload.FieldStatus).
			All(ctx)
		if err != nil {
			return 0, fmt.Errorf("read upload records: %w", err)
		}
		for _, u := range page {
			r := refs.add(u.ObjectKey)
			// Only a COMPLETED record promises an object. A PENDING upload may
			// not have written it yet, and a FAILED one may have stored
			// nothing at all, so their absent objects are not drift.
			if u.Status == upload.StatusCOMPLETED {
				r.completed = true
			}
		}
		scanned += len(page)
		if len(page) < pageSize {
			return scanned, nil
		}
		lastID = page[len(page)-1].ID
	}
}

// addPurges adds the keys of the bucket's pending purges, paging by id.
func (refs references) addPurges(ctx context.Context, client *ent.Client, bucket string, pageSize int) error {
	for lastID := 0; ; {
		page, err := client.ObjectPurge.Query().
			Where(objectpurge.Bucket(bucket), objectpurge.IDGT(lastID)).
			Order(objectpurge.ByID()).
			Limit(pageSize).
			Select(objectpurge.FieldID, objectpurge.FieldObjectKey).
			All(ctx)
		if err != nil {
			return fmt.Errorf("read pending purges: %w", err)
		}
		for _, p := range page {
			refs.add(p.ObjectKey)
		}
		if len(page) < pageSize {
			return nil
		}
		lastID = page[len(page)-1].ID
	}
}

// listUnreferenced lists the whole bucket, marks the objects refs knows, and
// returns the others.
func listUnreferenced(ctx context.Context, s3Client *s3.Client, bucket string, pageSize int, refs references, report *Report) ([]OrphanedObject, error) {
	var unknown []OrphanedObject
	pages := s3.NewListObjectsV2Paginator(s3Client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(bucket),
		MaxKeys: aws.Int32(int32(min(pageSize, 1000))),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list bucket %q: %w", bucket, err)
		}
		for _, obj := range page.Contents {
			report.ObjectsScanned++
			key := aws.ToString(obj.Key)
			if r := refs[key]; r != nil {
				r.listed = true
				continue
			}
			unknown = append(unknown, OrphanedObject{
				Key:          key,
				Size:         aws.ToInt64(obj.Size),
				LastModified: aws.ToTime(obj.LastModified).UTC(),
			})
		}
	}
	return unknown, nil
}

// isReferenced reports whether a record or a pending purge names the object.
// Records are asked first, for the same reason as in loadReferences.
func isReferenced(ctx context.Context, uploads *ent.UploadClient, purges *ent.ObjectPurgeClient, bucket, key string) (bool, error) {
	found, err := uploads.Query().Where(upload.Bucket(bucket), upload.ObjectKey(key)).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("look up records of %q: %w", key, err)
	}
	if found {
		return true, nil
	}
	found, err = purges.Query().Where(objectpurge.Bucket(bucket), objectpurge.ObjectKey(key)).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("look up purges of %q: %w", key, err)
	}
	return found, nil
}

// queuePurge writes a purge for key, due now, unless a record or a pending
// purge names it by then; queued is false in that case. The check and the
// write share a transaction (on SQLite a write-locked one), so a key is not
// queued twice; should two runs on PostgreSQL race, the second purge only
// finds the object gone, which counts as done. With abortAllMultipart the
// purger also aborts every incomplete multipart upload of the key.
func queuePurge(ctx context.Context, client *ent.Client, bucket, key string, abortAllMultipart bool) (queued bool, err error) {
	tx, err := client.Tx(ctx)
	if err != nil {
		return false, fmt.Errorf("begin queueing purge of %q: %w", key, err)
	}
	defer func() {
		if !queued {
			_ = tx.Rollback()
		}
	}()
	referenced, err := isReferenced(ctx, tx.Upload, tx.ObjectPurge, bucket, key)
	if err != nil || referenced {
		return false, err
	}
	_, err = tx.ObjectPurge.Create().
		SetUploadID(PurgeUploadID).
		SetBucket(bucket).
		SetObjectKey(key).
		SetAbortAllMultipart(abortAllMultipart).
		SetNextAttemptAt(time.Now()).
		Save(ctx)
	if err != nil {
		return false, fmt.Errorf("queue purge of %q: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit purge of %q: %w", key, err)
	}
	return true, nil
}

// findMissing reports the COMPLETED records whose object the listing did not
// see. Each such key is confirmed with a HEAD and its records are read again
// afterwards, so that an upload deleted during the run (record first, then
// object) is not reported. Nothing is repaired: the record is the user's and
// still lists the upload, and deleting it silently would lose the only trace
// of data an operator may yet restore (from a backup or an older version).
func findMissing(ctx context.Context, client *ent.Client, store *objectstore.Store, bucket string, refs references, report *Report) error {
	var keys []string
	for key, r := range refs {
		if r.completed && !r.listed {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		exists, err := store.Exists(ctx, bucket, key)
		if err != nil {
			return err
		}
		if exists {
			continue
		}
		records, err := client.Upload.Query().
			Where(upload.Bucket(bucket), upload.ObjectKey(key), upload.StatusEQ(upload.StatusCOMPLETED)).
			Order(upload.ByID()).
			All(ctx)
		if err != nil {
			return fmt.Errorf("read records of %q: %w", key, err)
		}
		for _, u := range records {
			report.MissingObjects = append(report.MissingObjects, MissingObject{
				UploadID: u.ID, OwnerID: u.OwnerID, Key: u.ObjectKey, CreatedAt: u.CreatedAt.UTC(),
			})
		}
	}
	return nil
}
