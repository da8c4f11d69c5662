package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/receipt"
)

// jobReceiptView is what receipts show --job --json prints.
type jobReceiptView struct {
	JWS     string             `json:"jws"`
	KeyID   string             `json:"kid"`
	Payload *receipt.JobClaims `json:"payload"`
}

// hashesPage is how many upload receipts show --job --hashes reads at once.
const hashesPage = 1000

func showJobReceipt(ctx context.Context, cfg *config.Config, jobID string, asJSON, hashes bool, stdout io.Writer) error {
	client, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	job, err := client.DeletionJob.Get(ctx, jobID)
	if ent.IsNotFound(err) {
		return fmt.Errorf("no deletion job %s: it never existed, or was pruned (JOB_RETENTION)", jobID)
	}
	if err != nil {
		return err
	}
	if job.Receipt == "" {
		return fmt.Errorf("job %s has no receipt yet: it is %s, and %d of its uploads wait for their own (in the trash, or their objects not purged yet)", jobID, job.Status, max(job.PendingReceipts, 0))
	}
	if hashes {
		return writeJobHashes(ctx, client, jobID, stdout)
	}
	kid, claims, err := receipt.DecodeJob(job.Receipt)
	if err != nil {
		return err
	}
	view := jobReceiptView{JWS: job.Receipt, KeyID: kid, Payload: claims}
	if asJSON {
		return json.NewEncoder(stdout).Encode(view)
	}
	payload, err := json.MarshalIndent(view.Payload, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n\nkid: %s\npayload: %s\n", view.JWS, view.KeyID, payload)
	return err
}

// writeJobHashes prints the job's upload receipts' hashes, "HASH  UPLOAD_ID"
// a line in upload id order, a page at a time.
func writeJobHashes(ctx context.Context, client *ent.Client, jobID string, stdout io.Writer) error {
	out := bufio.NewWriter(stdout)
	for after := ""; ; {
		page, err := receipt.JobHashes(ctx, client, jobID, after, hashesPage)
		if err != nil {
			return err
		}
		for _, h := range page {
			if _, err := fmt.Fprintf(out, "%s  %s\n", h.Hash, h.UploadID); err != nil {
				return err
			}
		}
		if len(page) < hashesPage {
			return out.Flush()
		}
		after = page[len(page)-1].UploadID
	}
}

// checkJobDigest checks a job receipt's digest against the list of upload
// receipts' hashes in path (as receipts show --job --hashes prints it: the
// first field of each line).
func checkJobDigest(claims *receipt.JobClaims, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	digest := receipt.NewDigest()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		digest.Add(fields[0])
	}
	if err := lines.Err(); err != nil {
		return err
	}
	if digest.Count() != claims.ReceiptCount || digest.Sum() != claims.ReceiptsDigest {
		return fmt.Errorf("%w: the %d hashes in %s digest to %s; the receipt says %d hashes, %s",
			receipt.ErrInvalid, digest.Count(), path, digest.Sum(), claims.ReceiptCount, claims.ReceiptsDigest)
	}
	return nil
}

// errHashesForUpload is --hashes given with an upload's receipt.
var errHashesForUpload = errors.New("--hashes checks a deletion job's receipt; this is an upload's")
