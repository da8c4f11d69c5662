package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/jobs"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestReceiptsCommandLine: receipts show prints a purged upload's receipt
// and payload; receipts verify, offline against the server's published
// keys, exits 0 for it and 1 with the reason once a byte of it changes;
// after receipts rotate-key, the server signs with the new key and the old
// receipt still verifies against its keys.
func TestReceiptsCommandLine(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	first := env.MustUpload(key, "first.txt", []byte("one"))
	if res := env.DeleteREST(key, first.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.App.Purger.Flush()
	settings := map[string]string{"DATA_DIR": env.Config.DataDir}
	if env.Config.DatabaseURL != "" {
		settings["DATABASE_URL"] = env.Config.DatabaseURL
	}

	run := runCommandLine(t, settings, "receipts", "show", "--upload", first.ID, "--json")
	var shown receiptView
	if err := json.Unmarshal([]byte(run.stdout), &shown); err != nil || run.status != 0 {
		t.Fatalf("receipts show: exit status %d, %v\n%s%s", run.status, err, run.stdout, run.stderr)
	}
	if shown.Payload.UploadID != first.ID || shown.Payload.ObjectKey != first.ObjectKey || shown.KeyID == "" {
		t.Errorf("receipts show: %+v", shown.Payload)
	}
	if run := runCommandLine(t, settings, "receipts", "show", "--upload", first.ID); run.status != 0 ||
		!strings.HasPrefix(run.stdout, shown.JWS+"\n") || !strings.Contains(run.stdout, `"upload_id": "`+first.ID+`"`) {
		t.Errorf("receipts show as text: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}

	jwksURL := env.URL + receipt.JWKSPath
	file := filepath.Join(t.TempDir(), "receipt.jws")
	write := func(jws string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(jws+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(shown.JWS)
	if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL); run.status != 0 || !strings.Contains(run.stdout, "valid: signed by kid "+shown.KeyID) {
		t.Errorf("verify: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	header, rest, _ := strings.Cut(shown.JWS, ".")
	payload, signature, _ := strings.Cut(rest, ".")
	changedPayload := []byte(payload)
	changedPayload[10] = flipChar(changedPayload[10])
	write(header + "." + string(changedPayload) + "." + signature)
	if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL); run.status != 1 || !strings.Contains(run.stderr, "the signature does not match") {
		t.Errorf("verify of a changed receipt: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}

	run = runCommandLine(t, settings, "receipts", "rotate-key")
	newKid := strings.TrimPrefix(strings.TrimSpace(run.stdout), "new receipt signing key: ")
	if run.status != 0 || newKid == shown.KeyID || newKid == "" {
		t.Fatalf("rotate-key: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	second := env.MustUpload(key, "second.txt", []byte("two"))
	if res := env.DeleteREST(key, second.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.App.Purger.Flush()
	run = runCommandLine(t, settings, "receipts", "show", "--upload", second.ID, "--json")
	var after receiptView
	if err := json.Unmarshal([]byte(run.stdout), &after); err != nil || after.KeyID != newKid {
		t.Fatalf("a receipt after the rotation: kid %q, want %q (%v)\n%s%s", after.KeyID, newKid, err, run.stdout, run.stderr)
	}
	for _, jws := range []string{shown.JWS, after.JWS} {
		write(jws)
		if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL); run.status != 0 {
			t.Errorf("verify after the rotation: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
		}
	}
}

// flipChar returns the base64url character that differs from c in the
// top of its six bits (a bit it always encodes).
func flipChar(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^32]
}

// TestJobReceiptCommandLine: receipts show --job prints a deletion job's
// receipt, --hashes its upload receipts' hashes; receipts verify checks
// the receipt and, with --hashes, its digest: 0 with the list as shown, 1
// with one hash left out, or with a byte of the receipt changed.
func TestJobReceiptCommandLine(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	userID, key := env.NewUser()
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		env.MustUpload(key, name, []byte(name))
	}
	job, err := env.App.Jobs.Start(ctx, jobs.Filter{OwnerID: userID, Actor: audit.CLI})
	if err != nil {
		t.Fatal(err)
	}
	env.Eventually(time.Minute, "the job's receipt", func() bool {
		return env.Client().DeletionJob.GetX(ctx, job.ID).Receipt != ""
	})
	settings := map[string]string{"DATA_DIR": env.Config.DataDir}
	if env.Config.DatabaseURL != "" {
		settings["DATABASE_URL"] = env.Config.DatabaseURL
	}
	run := runCommandLine(t, settings, "receipts", "show", "--job", job.ID, "--json")
	var shown jobReceiptView
	if err := json.Unmarshal([]byte(run.stdout), &shown); err != nil || run.status != 0 {
		t.Fatalf("receipts show --job: exit status %d, %v\n%s%s", run.status, err, run.stdout, run.stderr)
	}
	if shown.Payload.JobID != job.ID || shown.Payload.DeletedCount != 3 || shown.Payload.ReceiptCount != 3 {
		t.Errorf("receipts show --job: %+v", shown.Payload)
	}
	run = runCommandLine(t, settings, "receipts", "show", "--job", job.ID, "--hashes")
	if lines := strings.Split(strings.TrimSpace(run.stdout), "\n"); run.status != 0 || len(lines) != 3 {
		t.Fatalf("receipts show --job --hashes: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	dir := t.TempDir()
	file, list, short := filepath.Join(dir, "job.jws"), filepath.Join(dir, "hashes"), filepath.Join(dir, "short")
	for path, content := range map[string]string{
		file: shown.JWS + "\n", list: run.stdout, short: run.stdout[strings.Index(run.stdout, "\n")+1:],
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	jwksURL := env.URL + receipt.JWKSPath
	if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL, "--hashes", list); run.status != 0 ||
		!strings.Contains(run.stdout, "its digest matches the 3 hashes listed") {
		t.Errorf("verify --hashes: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL, "--hashes", short); run.status != 1 ||
		!strings.Contains(run.stderr, "the 2 hashes in") {
		t.Errorf("verify --hashes with one left out: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	header, rest, _ := strings.Cut(shown.JWS, ".")
	changed := []byte(rest)
	changed[10] = flipChar(changed[10])
	if err := os.WriteFile(file, []byte(header+"."+string(changed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if run := runCommandLine(t, nil, "receipts", "verify", file, "--jwks", jwksURL); run.status != 1 || !strings.Contains(run.stderr, "the signature does not match") {
		t.Errorf("verify of a changed job receipt: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
}
