package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
