package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
)

// findStuck reports the bucket's PENDING uploads created before deadline,
// paging by id. Storing them must have stopped long ago (a crash mid-upload
// leaves them so), and nothing but the service's janitor will change them.
// Nothing is repaired here: the janitor marks them FAILED and purges them,
// and one mechanism for that is enough.
//
// Whether the object and multipart uploads exist comes from the listings:
// a stuck record was created long before the run began (by the real clock),
// so the snapshot read its key.
func findStuck(ctx context.Context, client *ent.Client, bucket string, deadline time.Time, pageSize int, refs references, report *Report) error {
	for lastID := ""; ; {
		page, err := client.Upload.Query().
			Where(
				upload.Bucket(bucket),
				upload.ObjectKeyNEQ(""),
				upload.StatusEQ(upload.StatusPENDING),
				upload.CreatedAtLT(deadline),
				upload.IDGT(lastID),
			).
			Order(upload.ByID()).
			Limit(pageSize).
			All(ctx)
		if err != nil {
			return fmt.Errorf("read stuck uploads: %w", err)
		}
		for _, u := range page {
			stuck := StuckUpload{UploadID: u.ID, OwnerID: u.OwnerID, Key: u.ObjectKey, CreatedAt: u.CreatedAt.UTC()}
			if r := refs[u.ObjectKey]; r != nil {
				stuck.ObjectStored, stuck.MultipartUploads = r.listed, r.multipart
			}
			report.StuckUploads = append(report.StuckUploads, stuck)
		}
		if len(page) < pageSize {
			return nil
		}
		lastID = page[len(page)-1].ID
	}
}
