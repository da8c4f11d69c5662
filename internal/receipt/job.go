package receipt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/deletionreceipt"
)

// JobClaims are the payload of a deletion job's receipt: the job, what it
// counted, and a digest of the receipts of every upload it deleted. The
// receipts themselves are listed apart (paged), not in the payload: a job
// may delete a million uploads.
type JobClaims struct {
	IssuedAt int64  `json:"iat"`
	JobID    string `json:"job_id"`
	OwnerID  string `json:"owner_id"`
	// Kind is FILTER or USER_ERASE; Status how the job ended (SUCCEEDED,
	// CANCELED, FAILED).
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// The job's counts (see DeletionJob), and how many upload receipts the
	// digest covers: DeletedCount less those restored from the trash.
	MatchedCount int `json:"matched_count"`
	DeletedCount int `json:"deleted_count"`
	HeldCount    int `json:"held_count"`
	FailedCount  int `json:"failed_count"`
	ReceiptCount int `json:"receipt_count"`
	// ReceiptsDigest is the hex SHA-256 of the hashes (Hash) of the upload
	// receipts, in upload id order, each as 64 hex digits and a newline:
	// the sha256sum of the list, one hash a line.
	ReceiptsDigest string `json:"receipts_digest"`
	// StartedAt and FinishedAt are the job's; CompletedAt is when the last
	// of its uploads was gone for good (this receipt's issue).
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	CompletedAt time.Time  `json:"completed_at"`
}

// DecodeJobClaims parses a verified job receipt's payload.
func DecodeJobClaims(payload []byte) (*JobClaims, error) {
	var c JobClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.JobID == "" {
		return nil, fmt.Errorf("%w: the payload is not the claims of a deletion job's receipt", ErrInvalid)
	}
	return &c, nil
}

// DecodeJob returns the kid and the claims of a job receipt without
// checking its signature: for showing a receipt the service itself stored.
func DecodeJob(compact string) (kid string, claims *JobClaims, err error) {
	if TypeOf(compact) != JobType {
		return "", nil, fmt.Errorf("%w: not a deletion job's receipt", ErrInvalid)
	}
	object, err := parse(compact)
	if err != nil {
		return "", nil, err
	}
	claims, err = DecodeJobClaims(object.UnsafePayloadWithoutVerification())
	return object.Signatures[0].Header.KeyID, claims, err
}

// Digest computes a ReceiptsDigest from upload receipts' hashes written to
// it in upload id order.
type Digest struct {
	sum   hash.Hash
	count int
}

// NewDigest returns an empty Digest.
func NewDigest() *Digest { return &Digest{sum: sha256.New()} }

// Add adds the next upload receipt's hash (hex, as Hash returns it).
func (d *Digest) Add(receiptHash string) {
	_, _ = io.WriteString(d.sum, receiptHash+"\n")
	d.count++
}

// Count returns how many hashes were added.
func (d *Digest) Count() int { return d.count }

// Sum returns the hex digest of the hashes added.
func (d *Digest) Sum() string { return hex.EncodeToString(d.sum.Sum(nil)) }

type jobContextKey struct{}

// WithJob returns ctx naming the deletion job whose batch deletes run in
// it: the purges, trash entries and receipts of the uploads they delete
// carry the job's id (JobOf), so that the job's receipt waits for them.
func WithJob(ctx context.Context, jobID string) context.Context {
	return context.WithValue(ctx, jobContextKey{}, jobID)
}

// JobOf returns the deletion job that ctx deletes for (WithJob), or "".
func JobOf(ctx context.Context) string {
	id, _ := ctx.Value(jobContextKey{}).(string)
	return id
}

// Settle adds delta to the receipts the job jobID still waits for (a batch
// that deleted n adds n; each receipt issued, or upload restored, takes 1
// away), inside tx, and issues the job's receipt there if the job has
// ended and waits for nothing more. A job's end calls it with delta 0,
// after writing the job's status in tx. Every caller writes the job's row,
// so of two transactions that each end the job's wait (its last purge, its
// end) the later, waiting for the row, sees the earlier. It is one
// statement, and does nothing for a job no longer kept (JOB_RETENTION).
func (i *Issuer) Settle(ctx context.Context, tx *ent.Tx, jobID string, delta int) error {
	query, args := sql.Dialect(dialect.Postgres).Update(deletionjob.Table).
		Add(deletionjob.FieldPendingReceipts, delta).
		Where(sql.EQ(deletionjob.FieldID, jobID)).
		Query()
	rows, err := tx.QueryContext(ctx, query+" RETURNING "+deletionjob.FieldStatus+", "+deletionjob.FieldPendingReceipts+", "+deletionjob.FieldDryRun+", "+deletionjob.FieldReceipt, args...)
	if err != nil {
		return fmt.Errorf("count the receipts of job %s: %w", jobID, err)
	}
	var status, stored string
	var pending int
	var dryRun, found bool
	for rows.Next() {
		found = true
		if err := rows.Scan(&status, &pending, &dryRun, &stored); err != nil {
			rows.Close()
			return fmt.Errorf("count the receipts of job %s: %w", jobID, err)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch deletionjob.Status(status) {
	case deletionjob.StatusSUCCEEDED, deletionjob.StatusCANCELED, deletionjob.StatusFAILED:
	default:
		return nil
	}
	if !found || dryRun || pending > 0 || stored != "" {
		return nil
	}
	return i.issueJob(ctx, tx, jobID)
}

// issueJob signs and stores, in tx, the receipt of the job jobID: it
// streams the job's upload receipts in upload id order, so its memory does
// not grow with the job.
func (i *Issuer) issueJob(ctx context.Context, tx *ent.Tx, jobID string) error {
	job, err := tx.DeletionJob.Get(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read job %s for its receipt: %w", jobID, err)
	}
	digest, err := digestOf(ctx, tx, jobID)
	if err != nil {
		return err
	}
	_ = i.keys.Refresh()
	now := time.Now().UTC()
	claims := JobClaims{
		IssuedAt: now.Unix(), JobID: job.ID, OwnerID: job.OwnerID, Kind: job.Kind.String(), Status: job.Status.String(),
		MatchedCount: job.MatchedCount, DeletedCount: job.DeletedCount, HeldCount: job.HeldCount, FailedCount: job.FailedCount,
		ReceiptCount: digest.Count(), ReceiptsDigest: digest.Sum(),
		StartedAt: utc(job.StartedAt), FinishedAt: utc(job.FinishedAt), CompletedAt: now,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	signed, err := i.keys.signJob(payload)
	if err != nil {
		return err
	}
	return tx.DeletionJob.UpdateOneID(jobID).SetReceipt(signed).Exec(ctx)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// digestOf streams the receipts of the job's uploads, in upload id order,
// into a Digest.
func digestOf(ctx context.Context, tx *ent.Tx, jobID string) (*Digest, error) {
	query, args := sql.Dialect(dialect.Postgres).Select(deletionreceipt.FieldJws).
		From(sql.Table(deletionreceipt.Table)).
		Where(sql.EQ(deletionreceipt.FieldDeletionJobID, jobID)).
		OrderBy(deletionreceipt.FieldUploadID).
		Query()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read the receipts of job %s: %w", jobID, err)
	}
	defer rows.Close()
	digest := NewDigest()
	var jws string
	for rows.Next() {
		if err := rows.Scan(&jws); err != nil {
			return nil, fmt.Errorf("read the receipts of job %s: %w", jobID, err)
		}
		digest.Add(Hash(jws))
	}
	return digest, rows.Err()
}

// JobReceiptHash is an upload receipt of a job: its upload and its hash.
type JobReceiptHash struct {
	UploadID string
	Hash     string
}

// JobHashes returns up to limit of the job's upload receipts' hashes, in
// upload id order, after the upload id after ("" from the first).
func JobHashes(ctx context.Context, client *ent.Client, jobID, after string, limit int) ([]JobReceiptHash, error) {
	q := client.DeletionReceipt.Query().
		Where(deletionreceipt.DeletionJobID(jobID)).
		Order(deletionreceipt.ByUploadID()).
		Limit(limit).
		Select(deletionreceipt.FieldUploadID, deletionreceipt.FieldJws)
	if after != "" {
		q.Where(deletionreceipt.UploadIDGT(after))
	}
	stored, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the receipts of job %s: %w", jobID, err)
	}
	out := make([]JobReceiptHash, len(stored))
	for n, r := range stored {
		out[n] = JobReceiptHash{UploadID: r.UploadID, Hash: Hash(r.Jws)}
	}
	return out, nil
}
