package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionreceipt"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/receipt"
)

func (c *commandLine) receiptsCommand() *cobra.Command {
	receipts := &cobra.Command{Use: "receipts", Short: "Show and verify deletion receipts; rotate their signing key", Args: c.noArgs, RunE: showHelp}
	receipts.AddCommand(c.receiptsShowCommand(), c.receiptsVerifyCommand(), c.receiptsRotateCommand())
	return receipts
}

// receiptView is what receipts show --json prints: the receipt and its
// payload, decoded.
type receiptView struct {
	JWS     string          `json:"jws"`
	KeyID   string          `json:"kid"`
	Payload *receipt.Claims `json:"payload"`
}

func (c *commandLine) receiptsShowCommand() *cobra.Command {
	var uploadID, jobID string
	var asJSON, hashes bool
	cmd := &cobra.Command{
		Use:   "show --upload UPLOAD_ID | --job JOB_ID [--hashes]",
		Short: "Print an upload's or a deletion job's deletion receipt and its payload",
		Long: `Prints the deletion receipt of an upload gone for good (its record deleted
and every version of its object removed): the receipt itself, a compact JWS
to hand to whoever needs the proof, then its payload decoded. Save the first
line to a file and check it with: uploads receipts verify FILE --jwks URL.

With --job, the receipt of a deletion job (a users delete erasure, or a
filter's job), issued once the job has ended and every upload it deleted
has its own receipt: its counts, and the digest of those receipts. With
--hashes, the upload receipts' hashes follow instead of the payload, one
"HASH  UPLOAD_ID" a line in upload id order (streamed, however many):
receipts verify FILE --hashes LIST checks the digest against them.`,
		Args: c.noArgs,
	}
	cfg := c.withSettings(cmd, config.ForDatabase)
	cmd.Flags().StringVar(&uploadID, "upload", "", "id of the upload (upl_…)")
	cmd.Flags().StringVar(&jobID, "job", "", "id of the deletion job (job_…)")
	cmd.Flags().BoolVar(&hashes, "hashes", false, "with --job: print the hashes of the job's upload receipts, not the payload")
	jsonFlag(cmd.Flags(), &asJSON)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		switch {
		case (uploadID == "") == (jobID == ""):
			return errors.New("give one of --upload and --job")
		case hashes && jobID == "":
			return errors.New("--hashes goes with --job")
		case jobID != "" && !ids.Valid(ids.JobPrefix, jobID):
			return fmt.Errorf("--job %q is not a job id (job_ and 32 hex digits)", jobID)
		case jobID != "":
			return showJobReceipt(cmd.Context(), cfg, jobID, asJSON, hashes, c.stdout)
		case !ids.Valid(ids.UploadPrefix, uploadID):
			return fmt.Errorf("--upload %q is not an upload id (upl_ and 32 hex digits)", uploadID)
		}
		return showReceipt(cmd.Context(), cfg, uploadID, asJSON, c.stdout)
	}
	return cmd
}

func showReceipt(ctx context.Context, cfg *config.Config, uploadID string, asJSON bool, stdout io.Writer) error {
	client, err := app.OpenDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	stored, err := client.DeletionReceipt.Query().Where(deletionreceipt.UploadID(uploadID)).Only(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("no deletion receipt for %s: it is not gone for good yet, never existed, or its receipt was pruned (AUDIT_RETENTION)", uploadID)
	}
	if err != nil {
		return err
	}
	kid, claims, err := receipt.Decode(stored.Jws)
	if err != nil {
		return err
	}
	view := receiptView{JWS: stored.Jws, KeyID: kid, Payload: claims}
	if asJSON {
		return json.NewEncoder(stdout).Encode(view)
	}
	return writeReceiptText(stdout, view)
}

// writeReceiptText prints the receipt on its own line, then its header's
// kid and its payload, indented.
func writeReceiptText(w io.Writer, view receiptView) error {
	payload, err := json.MarshalIndent(view.Payload, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n\nkid: %s\npayload: %s\n", view.JWS, view.KeyID, payload)
	return err
}

func (c *commandLine) receiptsVerifyCommand() *cobra.Command {
	var jwks, hashes string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE --jwks FILE|URL [--hashes LIST]",
		Short: "Check a deletion receipt's signature, offline",
		Long: `Checks that the deletion receipt in FILE (a compact JWS, as receipts show
prints it; - reads standard input) was signed by one of the keys in --jwks:
a JSON Web Key Set file, or the URL of a server's /.well-known/jwks.json
(fetched once). Nothing else is needed: no database, no credential.

A deletion job's receipt (receipts show --job) is checked the same way;
with --hashes LIST (as receipts show --job --hashes prints it), its digest
is also checked against the hashes of the upload receipts listed.

Exit status: 0 when the receipt is valid (its payload is printed), 1 when it
is not (the reason is printed), 2 when FILE or the keys cannot be read.`,
		Args:        cobra.ExactArgs(1),
		Annotations: map[string]string{errorExitStatus: "2"},
	}
	cmd.Flags().StringVar(&jwks, "jwks", "", "the public keys: a JWKS file, or an http(s) URL (required)")
	cmd.Flags().StringVar(&hashes, "hashes", "", "a job receipt's upload receipt hashes, one a line, to check its digest against")
	jsonFlag(cmd.Flags(), &asJSON)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if jwks == "" {
			return errors.New("--jwks is required")
		}
		compact, err := readReceipt(args[0])
		if err != nil {
			return err
		}
		keys, err := readJWKS(cmd.Context(), jwks)
		if err != nil {
			return err
		}
		if receipt.TypeOf(compact) == receipt.JobType {
			return c.verifyJobReceipt(compact, keys, hashes, asJSON)
		}
		if hashes != "" {
			return errHashesForUpload
		}
		kid, payload, err := receipt.Verify(compact, keys)
		if errors.Is(err, receipt.ErrInvalid) {
			return &exitError{code: 1, err: err}
		}
		if err != nil {
			return err
		}
		claims, err := receipt.DecodeClaims(payload)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		view := receiptView{JWS: compact, KeyID: kid, Payload: claims}
		if asJSON {
			return json.NewEncoder(c.stdout).Encode(view)
		}
		indented, err := json.MarshalIndent(claims, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "valid: signed by kid %s\npayload: %s\n", kid, indented)
		return err
	}
	return cmd
}

// maxReceiptFile bounds what verify reads: a receipt is well under a
// kilobyte, a key set a few.
const maxReceiptFile = 1 << 20

// readReceipt reads the receipt in path (- is standard input): its first
// non-empty line, so that receipts show's output works as it is.
func readReceipt(path string) (string, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxReceiptFile))
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" {
			return line, nil
		}
	}
	return "", fmt.Errorf("%s holds no receipt", path)
}

// readJWKS reads a key set from a file or fetches it from an http(s) URL.
func readJWKS(ctx context.Context, source string) ([]byte, error) {
	if !strings.HasPrefix(source, "http://") && !strings.HasPrefix(source, "https://") {
		return os.ReadFile(source)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--jwks: %s answered %s", source, res.Status)
	}
	return io.ReadAll(io.LimitReader(res.Body, maxReceiptFile))
}

// verifyJobReceipt is receipts verify of a deletion job's receipt, and of
// its digest against the hashes in the file hashes if given.
func (c *commandLine) verifyJobReceipt(compact string, keys []byte, hashes string, asJSON bool) error {
	kid, payload, err := receipt.VerifyJob(compact, keys)
	if errors.Is(err, receipt.ErrInvalid) {
		return &exitError{code: 1, err: err}
	}
	if err != nil {
		return err
	}
	claims, err := receipt.DecodeJobClaims(payload)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if hashes != "" {
		if err := checkJobDigest(claims, hashes); errors.Is(err, receipt.ErrInvalid) {
			return &exitError{code: 1, err: err}
		} else if err != nil {
			return err
		}
	}
	if asJSON {
		return json.NewEncoder(c.stdout).Encode(jobReceiptView{JWS: compact, KeyID: kid, Payload: claims})
	}
	indented, err := json.MarshalIndent(claims, "", "  ")
	if err != nil {
		return err
	}
	checked := ""
	if hashes != "" {
		checked = fmt.Sprintf(", and its digest matches the %d hashes listed", claims.ReceiptCount)
	}
	_, err = fmt.Fprintf(c.stdout, "valid: a deletion job's receipt, signed by kid %s%s\npayload: %s\n", kid, checked, indented)
	return err
}

func (c *commandLine) receiptsRotateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Sign deletion receipts with a new key from now on",
		Long: `Adds a new Ed25519 key to RECEIPT_KEY_FILE and prints its kid. Running
servers sign with it from their next receipts on, and publish it at
/.well-known/jwks.json; the old keys stay published there, so receipts they
signed still verify. Instances sharing the file all switch; copy the file
to instances that have their own.`,
		Args: c.noArgs,
	}
	cfg := c.withSettings(cmd, config.ForDatabase|config.ForDeletes)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		kid, err := receipt.Rotate(cfg.ReceiptKeyPath())
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "new receipt signing key: %s\n", kid)
		return err
	}
	return cmd
}
