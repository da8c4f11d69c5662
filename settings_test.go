package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/webhook"
)

// outOfRange are values of number settings outside their limits: each must
// stop the server and every command that takes the setting, naming it,
// before anything is opened or written. PURGE_POLL_INTERVAL=0 and
// JANITOR_INTERVAL=0 used to crash the server with "non-positive interval
// for NewTicker" after it had made its database and seeded the demo.
var outOfRange = []struct{ env, value string }{
	{"PURGE_POLL_INTERVAL", "0"},
	{"PURGE_POLL_INTERVAL", "1ns"}, // a busy loop on the database
	{"PURGE_POLL_INTERVAL", "2h"},
	{"JANITOR_INTERVAL", "0"},
	{"JANITOR_INTERVAL", "-1m"},
	{"JANITOR_INTERVAL", "48h"},
	{"RATE_LIMIT_WINDOW", "0"},
	{"RATE_LIMIT_WINDOW", "500ms"},
	{"WEBHOOK_TIMEOUT", "0"}, // silently became the default
	{"WEBHOOK_TIMEOUT", "2h"},
	{"WEBHOOK_MAX_BACKOFF", "0"}, // silently became the default
	{"WEBHOOK_MAX_BACKOFF", "100ms"},
	{"WEBHOOK_MAX_BACKOFF", "25h"},
	{"PURGE_MAX_BACKOFF", "0"}, // retried every purge without a pause
	{"PURGE_MAX_BACKOFF", "48h"},
	{"PURGE_INLINE_TIMEOUT", "0"},
	{"PURGE_INLINE_TIMEOUT", "-5s"},
	{"PURGE_INLINE_TIMEOUT", "2h"},
	{"SHUTDOWN_TIMEOUT", "0"},
	{"SHUTDOWN_TIMEOUT", "25h"},
	{"UPLOAD_TIMEOUT", "0"}, // made every upload fail
	{"UPLOAD_TIMEOUT", "999ms"},
	{"UPLOAD_TIMEOUT", "169h"},
	{"REQUEST_BODY_TIMEOUT", "0"}, // silently turned the slow-body defence off
	{"REQUEST_BODY_TIMEOUT", "2h"},
	{"UPLOAD_BODY_IDLE_TIMEOUT", "0"},
	{"UPLOAD_BODY_IDLE_TIMEOUT", "2h"},
	{"FAILED_UPLOAD_RETENTION", "-1h"},
	{"DELETE_RETENTION", "-1s"},
	{"AUDIT_RETENTION", "-24h"},
	{"JOB_RETENTION", "-1h"},
	{"IDEMPOTENCY_RETENTION", "0"},
	{"IDEMPOTENCY_RETENTION", "59s"},
	{"S3_PART_SIZE", "1"}, // a 10 KB upload made 10,000 UploadPart calls
	{"S3_PART_SIZE", "0"}, // silently became the default
	{"S3_PART_SIZE", "5242879"},
	{"S3_PART_SIZE", "5368709121"},
	{"MAX_UPLOAD_SIZE", "0"},
	{"MAX_UPLOAD_SIZE", "5497558138881"},
	{"RATE_LIMIT", "-1"},
	{"GRAPHQL_COMPLEXITY_LIMIT", "0"},
	{"GRAPHQL_COMPLEXITY_LIMIT", "1000001"},
	{"GRAPHQL_DEPTH_LIMIT", "0"},
	{"GRAPHQL_DEPTH_LIMIT", "101"},
	{"GRAPHQL_TIMEOUT", "0"}, // every operation would time out at once
	{"GRAPHQL_TIMEOUT", "2h"},
	{"SUBSCRIPTIONS_PER_CREDENTIAL", "0"}, // would refuse every subscription
	{"SUBSCRIPTIONS_PER_CREDENTIAL", "10001"},
	{"AUTH_CLOCK_SKEW", "-1s"},
	{"AUTH_CLOCK_SKEW", "1h"}, // an expired token would work for an hour
}

// TestSettingOutOfRange: a number setting outside its limits, given as a
// variable or as a flag, stops the server and each command that takes it
// with an error naming the setting, the value and the limits, a non-zero
// exit status, and nothing written: the data directory is not even made.
func TestSettingOutOfRange(t *testing.T) {
	t.Parallel()
	commands := []struct {
		args   []string
		scope  config.Scope
		status int
	}{
		{nil, config.All, 1},
		{[]string{"users", "delete", "--id", "usr_00000000000000000000000000000000"}, config.ForDatabase | config.ForBucket | config.ForDeletes, 1},
		{[]string{"reconcile"}, config.ForDatabase | config.ForBucket, 2},
		{[]string{"users", "list"}, config.ForDatabase, 1},
	}
	covered := map[string]bool{}
	for _, row := range outOfRange {
		covered[row.env] = true
		setting := settingNamed(t, row.env)
		for _, c := range commands {
			if setting.Scope&c.scope == 0 {
				continue
			}
			t.Run(row.env+"="+row.value+"/"+strings.Join(c.args, " "), func(t *testing.T) {
				t.Parallel()
				dataDir := filepath.Join(t.TempDir(), "data")
				// ADDR: should the server start by mistake, it takes no
				// port of anyone's.
				env := map[string]string{"DATA_DIR": dataDir, "ADDR": "127.0.0.1:0"}

				env[row.env] = row.value
				run := runCommandLine(t, env, c.args...)
				want := "error: " + row.env + "=" + row.value + ": want "
				checkRefused(t, run, c.status, want, setting.Range, dataDir)

				delete(env, row.env)
				run = runCommandLine(t, env, append(append([]string{}, c.args...), "--"+setting.Flag+"="+row.value)...)
				want = "error: --" + setting.Flag + "=" + row.value + ": want "
				checkRefused(t, run, c.status, want, setting.Range, dataDir)
			})
		}
	}
	for _, s := range config.Settings() {
		if s.Range != "" && !covered[s.Env] {
			t.Errorf("%s has limits (%s) but no row in outOfRange", s.Env, s.Range)
		}
	}
}

// TestSettingsThatDoNotGoTogether: a largest upload that would need more
// than S3's 10,000 parts of the part size stops start-up, naming both.
func TestSettingsThatDoNotGoTogether(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"DATA_DIR": dataDir, "ADDR": "127.0.0.1:0", "MAX_UPLOAD_SIZE": "200000000000", "S3_PART_SIZE": "16777216"}
	run := runCommandLine(t, env)
	checkRefused(t, run, 1, "error: MAX_UPLOAD_SIZE=200000000000: ", "S3_PART_SIZE=16777216", dataDir)
}

func checkRefused(t *testing.T, run commandLineRun, status int, prefix, mention, dataDir string) {
	t.Helper()
	if run.status != status || !strings.HasPrefix(run.stderr, prefix) || !strings.Contains(run.stderr, mention) {
		t.Errorf("exit status %d, stderr %q; want %d and an error starting %q that says %q", run.status, run.stderr, status, prefix, mention)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

func settingNamed(t *testing.T, env string) config.Setting {
	t.Helper()
	for _, s := range config.Settings() {
		if s.Env == env {
			return s
		}
	}
	t.Fatalf("no setting %s", env)
	return config.Setting{}
}

// TestWebhookKeyFilePermissions: start-up warns when other users may read
// the webhook key file (it opens every endpoint's signing secret), naming
// the file and its mode, and is quiet about a private one.
func TestWebhookKeyFilePermissions(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString(make([]byte, webhook.KeySize)) + "\n"
	for _, mode := range []os.FileMode{0o644, 0o640, 0o600} {
		t.Run(fmt.Sprintf("%#o", mode), func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			keyFile := filepath.Join(t.TempDir(), "webhook.key")
			if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(keyFile, mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			env := map[string]string{"DATA_DIR": dataDir, "ADDR": freeAddr(t), "WEBHOOK_KEY_FILE": keyFile}
			_, stderr := serveWith(t, env, nil, func() {})
			warned := strings.Contains(stderr, "webhook key file is accessible to other users") &&
				strings.Contains(stderr, `"file":"`+keyFile+`"`) && strings.Contains(stderr, fmt.Sprintf(`"mode":"%#o"`, mode))
			if want := mode&0o077 != 0; warned != want {
				t.Errorf("warned: %v, want %v; logs:\n%s", warned, want, stderr)
			}
		})
	}
}

// TestReceiptKeyFile: the first start makes RECEIPT_KEY_FILE (and its
// directory), readable by its owner only, and publishes its public key at
// /.well-known/jwks.json; a key file others may read is warned about.
func TestReceiptKeyFile(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "keys", "receipts.json")
	env := map[string]string{"DATA_DIR": t.TempDir(), "ADDR": freeAddr(t), "RECEIPT_KEY_FILE": keyFile}
	var jwks string
	_, stderr := serveWith(t, env, nil, func() {
		res, err := http.Get("http://" + env["ADDR"] + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		jwks = string(body)
	})
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no key file made: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	if !strings.Contains(jwks, `"crv":"Ed25519"`) || strings.Contains(jwks, `"d":`) {
		t.Errorf("jwks: %s", jwks)
	}
	if strings.Contains(stderr, "receipt key file is accessible") {
		t.Errorf("warned about a private key file:\n%s", stderr)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	env["ADDR"] = freeAddr(t)
	if _, stderr := serveWith(t, env, nil, func() {}); !strings.Contains(stderr, "receipt key file is accessible to other users") {
		t.Errorf("no warning about a key file others may read:\n%s", stderr)
	}
}
