package reconcile

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is what a run found, and did.
type Report struct {
	Bucket       string    `json:"bucket"`
	CheckedAt    time.Time `json:"checked_at"`
	Repair       bool      `json:"repair"`
	GraceSeconds float64   `json:"grace_seconds"`
	// ObjectsScanned counts the objects listed in the bucket.
	ObjectsScanned int `json:"objects_scanned"`
	// RecordsScanned counts the upload records naming an object in the
	// bucket, whatever their status.
	RecordsScanned int `json:"records_scanned"`
	// RecordsInOtherBuckets counts records naming an object in another
	// bucket (the service was once configured with it). They are not
	// checked: only the store's bucket is listed.
	RecordsInOtherBuckets int              `json:"records_in_other_buckets"`
	OrphanedObjects       []OrphanedObject `json:"orphaned_objects"`
	MissingObjects        []MissingObject  `json:"missing_objects"`
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

// MissingObject is a COMPLETED upload whose object is not in the bucket.
type MissingObject struct {
	UploadID  string    `json:"upload_id"`
	OwnerID   string    `json:"owner_id"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// Clean reports whether the run found no drift at all.
func (r *Report) Clean() bool {
	return len(r.OrphanedObjects) == 0 && len(r.MissingObjects) == 0
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
	if r.RecordsInOtherBuckets > 0 {
		fmt.Fprintf(tw, "%d records name objects in other buckets; they were not checked.\n", r.RecordsInOtherBuckets)
	}
	if r.Clean() {
		fmt.Fprintln(tw, "No drift.")
		return tw.Flush()
	}
	if len(r.OrphanedObjects) > 0 {
		fmt.Fprintf(tw, "\nOrphaned objects (no upload record, no pending purge): %d\n", len(r.OrphanedObjects))
		for _, o := range r.OrphanedObjects {
			fmt.Fprintf(tw, "  %s\t%d bytes\t%s\t%s\n", o.Key, o.Size, o.LastModified.UTC().Format(time.RFC3339), orphanAction(o))
		}
	}
	if len(r.MissingObjects) > 0 {
		fmt.Fprintf(tw, "\nCompleted uploads whose object is missing (left alone): %d\n", len(r.MissingObjects))
		for _, m := range r.MissingObjects {
			fmt.Fprintf(tw, "  %s\towner %s\t%s\n", m.UploadID, m.OwnerID, m.Key)
		}
	}
	return tw.Flush()
}

func orphanAction(o OrphanedObject) string {
	switch {
	case o.Queued:
		return "queued for purge"
	case o.TooYoung:
		return "younger than the grace period: left alone"
	default:
		return "would be queued by a repair"
	}
}
