package reconcile

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run found, and did.
type Report struct {
	Bucket       string    `json:"bucket"`
	CheckedAt    time.Time `json:"checked_at"`
	Repair       bool      `json:"repair"`
	GraceSeconds float64   `json:"grace_seconds"`
	// StuckAfterSeconds is how long a PENDING upload may last before it
	// counts as stuck: the upload timeout plus StuckMargin.
	StuckAfterSeconds float64 `json:"stuck_after_seconds"`
	// ObjectsScanned counts the objects listed in the bucket.
	ObjectsScanned int `json:"objects_scanned"`
	// MultipartUploadsScanned counts the incomplete multipart uploads
	// listed in the bucket.
	MultipartUploadsScanned int `json:"multipart_uploads_scanned"`
	// MultipartUploadsGone counts the multipart uploads that the listing
	// showed under keys nothing names but that the server no longer holds
	// (it answered NoSuchUpload when asked for their parts): MinIO lists an
	// upload whose completion was cut off for up to 24 hours. They are not
	// orphans: nothing is stored, and nothing is left to abort.
	MultipartUploadsGone int `json:"multipart_uploads_gone,omitempty"`
	// MultipartUploadsNotListed, when not empty, says why the bucket's
	// multipart uploads could not be listed, and so were not compared.
	MultipartUploadsNotListed string `json:"multipart_uploads_not_listed,omitempty"`
	// MultipartUploadsSkipped names the keys past whose first page of
	// multipart uploads the server would not list (it refused its own
	// upload-id marker): further uploads of those keys were not checked.
	MultipartUploadsSkipped []string `json:"multipart_uploads_skipped,omitempty"`
	// RecordsScanned counts the upload records naming an object in the
	// bucket, whatever their status.
	RecordsScanned int `json:"records_scanned"`
	// RecordsInOtherBuckets counts records naming an object in another
	// bucket (the service was once configured with it). They are not
	// checked: only the store's bucket is listed.
	RecordsInOtherBuckets    int                       `json:"records_in_other_buckets"`
	OrphanedObjects          []OrphanedObject          `json:"orphaned_objects"`
	OrphanedMultipartUploads []OrphanedMultipartUpload `json:"orphaned_multipart_uploads"`
	MissingObjects           []MissingObject           `json:"missing_objects"`
	StuckUploads             []StuckUpload             `json:"stuck_uploads"`
	// ObjectLock says the bucket has S3 Object Lock, so that holds are
	// mirrored to its objects' legal holds, and UnmirroredHolds was checked.
	ObjectLock      bool             `json:"object_lock"`
	UnmirroredHolds []UnmirroredHold `json:"unmirrored_holds"`
}

// OrphanedObject is an object that no upload record and no pending purge
// names.
type OrphanedObject struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"last_modified"`
	// Queued says a purge was queued for it by this run.
	Queued bool `json:"queued"`
	// TooYoung says it is younger than the grace period, so it is not
	// queued even with Repair.
	TooYoung bool `json:"too_young"`
}

// OrphanedMultipartUpload is an incomplete multipart upload of a key that
// no upload record and no pending purge names.
type OrphanedMultipartUpload struct {
	Key string `json:"key"`
	// MultipartUploadID is S3's id of the multipart upload.
	MultipartUploadID string    `json:"multipart_upload_id"`
	Initiated         time.Time `json:"initiated"`
	// Queued says this run queued a purge that aborts every multipart
	// upload of the key (and deletes its object, if any).
	Queued bool `json:"queued"`
	// TooYoung says it, or something else stored under its key, is younger
	// than the grace period, so it is not queued even with Repair.
	TooYoung bool `json:"too_young"`
}

// StuckUpload is a PENDING upload older than the upload timeout plus
// StuckMargin: storing it stopped (a crash) without marking it. Reconcile
// only reports it; the service's janitor marks it FAILED and purges it.
type StuckUpload struct {
	UploadID  string    `json:"upload_id"`
	OwnerID   string    `json:"owner_id"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
	// ObjectStored says the listing saw its object.
	ObjectStored bool `json:"object_stored"`
	// MultipartUploads counts the incomplete multipart uploads listed
	// under its key.
	MultipartUploads int `json:"multipart_uploads"`
}

// MissingObject is a COMPLETED upload whose object is not in the bucket.
type MissingObject struct {
	UploadID  string    `json:"upload_id"`
	OwnerID   string    `json:"owner_id"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// Clean reports whether the run found no drift at all.
func (r *Report) Clean() bool {
	return len(r.OrphanedObjects) == 0 && len(r.OrphanedMultipartUploads) == 0 &&
		len(r.MissingObjects) == 0 && len(r.StuckUploads) == 0 && len(r.UnmirroredHolds) == 0
}

// WriteText writes the report for people: a summary line, then one line per
// finding.
func (r *Report) WriteText(w io.Writer) error {
	mode := "report only"
	if r.Repair {
		mode = "repair"
	}
	grace := time.Duration(r.GraceSeconds * float64(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Bucket %s: %d objects, %d upload records (%s, grace %s).\n",
		r.Bucket, r.ObjectsScanned, r.RecordsScanned, mode, grace)
	if len(r.MultipartUploadsSkipped) > 0 {
		fmt.Fprintf(tw, "The server would not list all multipart uploads of: %s (it refused its own upload-id marker).\n", strings.Join(r.MultipartUploadsSkipped, ", "))
	}
	if r.MultipartUploadsNotListed != "" {
		fmt.Fprintf(tw, "Incomplete multipart uploads were not checked: %s.\n", r.MultipartUploadsNotListed)
	} else {
		fmt.Fprintf(tw, "%d incomplete multipart uploads.\n", r.MultipartUploadsScanned)
	}
	if r.MultipartUploadsGone > 0 {
		fmt.Fprintf(tw, "%d of them listed but no longer held by the server (NoSuchUpload): not orphans.\n", r.MultipartUploadsGone)
	}
	if r.RecordsInOtherBuckets > 0 {
		fmt.Fprintf(tw, "%d records name objects in other buckets; they were not checked.\n", r.RecordsInOtherBuckets)
	}
	if r.ObjectLock {
		fmt.Fprintln(tw, "The bucket has Object Lock: holds are mirrored to legal holds, and were checked.")
	}
	if r.Clean() {
		fmt.Fprintln(tw, "No drift.")
		return tw.Flush()
	}
	if len(r.OrphanedObjects) > 0 {
		fmt.Fprintf(tw, "\nOrphaned objects (no upload record, no pending purge): %d\n", len(r.OrphanedObjects))
		for _, o := range r.OrphanedObjects {
			fmt.Fprintf(tw, "  %s\t%d bytes\t%s\t%s\n", o.Key, o.Size, o.LastModified.UTC().Format(time.RFC3339), orphanAction(o.Queued, o.TooYoung))
		}
	}
	if len(r.OrphanedMultipartUploads) > 0 {
		fmt.Fprintf(tw, "\nOrphaned multipart uploads (no upload record, no pending purge): %d\n", len(r.OrphanedMultipartUploads))
		for _, u := range r.OrphanedMultipartUploads {
			fmt.Fprintf(tw, "  %s\tupload %s\tinitiated %s\t%s\n", u.Key, u.MultipartUploadID, u.Initiated.UTC().Format(time.RFC3339), orphanAction(u.Queued, u.TooYoung))
		}
	}
	if len(r.MissingObjects) > 0 {
		fmt.Fprintf(tw, "\nCompleted uploads whose object is missing (left alone): %d\n", len(r.MissingObjects))
		for _, m := range r.MissingObjects {
			fmt.Fprintf(tw, "  %s\towner %s\t%s\n", m.UploadID, m.OwnerID, m.Key)
		}
	}
	if len(r.StuckUploads) > 0 {
		stuckAfter := time.Duration(r.StuckAfterSeconds * float64(time.Second))
		fmt.Fprintf(tw, "\nUploads stuck in PENDING for over %s (reported only: the service's janitor marks them FAILED and purges them): %d\n", stuckAfter, len(r.StuckUploads))
		for _, s := range r.StuckUploads {
			fmt.Fprintf(tw, "  %s\towner %s\t%s\tcreated %s\t%s\n", s.UploadID, s.OwnerID, s.Key, s.CreatedAt.UTC().Format(time.RFC3339), storedState(s))
		}
	}
	if len(r.UnmirroredHolds) > 0 {
		fmt.Fprintf(tw, "\nHeld uploads whose object lacks the S3 legal hold: %d\n", len(r.UnmirroredHolds))
		for _, h := range r.UnmirroredHolds {
			fmt.Fprintf(tw, "  %s\towner %s\t%s\t%d versions unlocked\t%s\n", h.UploadID, h.OwnerID, h.Key, h.VersionsUnlocked, mirrorAction(h))
		}
	}
	return tw.Flush()
}

func mirrorAction(h UnmirroredHold) string {
	switch {
	case h.Pending:
		return "the service's mirror is on it (a note is queued)"
	case h.Queued:
		return "queued for the service's mirror"
	default:
		return "would be queued by a repair"
	}
}

func orphanAction(queued, tooYoung bool) string {
	switch {
	case queued:
		return "queued for purge"
	case tooYoung:
		return "younger than the grace period: left alone"
	default:
		return "would be queued by a repair"
	}
}

func storedState(s StuckUpload) string {
	stored := "no object"
	if s.ObjectStored {
		stored = "object stored"
	}
	if s.MultipartUploads > 0 {
		stored += fmt.Sprintf(", %d incomplete multipart uploads", s.MultipartUploads)
	}
	return stored
}

// Drift reports whether the run found anything out of agreement: orphaned
// objects or multipart uploads, missing objects or stuck uploads, whether
// or not it queued repairs for them.
func (r *Report) Drift() bool {
	return len(r.OrphanedObjects)+len(r.OrphanedMultipartUploads)+len(r.MissingObjects)+len(r.StuckUploads)+len(r.UnmirroredHolds) > 0
}
