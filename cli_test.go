package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cli")

// fakeBuild is the build information the golden files are written with.
func fakeBuild() (*debug.BuildInfo, bool) {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/safedelete/uploads",
		Main:      debug.Module{Path: "github.com/safedelete/uploads", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "3489b2e8d1c0f5a6b7c8d9e0f1a2b3c4d5e6f7a8"},
			{Key: "vcs.time", Value: "2026-11-27T05:48:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}, true
}

// commandLineRun is one run of the command line as main makes it: its
// output and exit status.
type commandLineRun struct {
	stdout, stderr string
	status         int
}

// runCommandLine runs the command line with env (DATA_DIR added, if
// missing, in a directory of the test's own) and the fake build
// information.
func runCommandLine(t *testing.T, env map[string]string, args ...string) commandLineRun {
	t.Helper()
	withDataDir := map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "data")}
	for k, v := range env {
		withDataDir[k] = v
	}
	var stdout, stderr bytes.Buffer
	c := &commandLine{lookupEnv: envOf(withDataDir), stdout: &stdout, stderr: &stderr, buildInfo: fakeBuild}
	// Bounded, should a case start the server by mistake.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status := exitStatus(c.run(ctx, args), &stderr)
	return commandLineRun{stdout.String(), stderr.String(), status}
}

// TestCommandLineGolden: help texts, the version, and the errors of
// settings and of the command line, compared with testdata/cli. After a
// deliberate change: go test -run TestCommandLineGolden -update, and
// review the diff.
func TestCommandLineGolden(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"help", nil, []string{"--help"}},
		{"help-users", nil, []string{"help", "users"}},
		{"help-users-create", nil, []string{"users", "create", "--help"}},
		{"help-users-show", nil, []string{"help", "users", "show"}},
		{"help-users-delete", nil, []string{"users", "delete", "--help"}},
		{"help-users-link", nil, []string{"users", "link", "--help"}},
		{"help-keys-create", nil, []string{"keys", "create", "--help"}},
		{"help-keys-list", nil, []string{"keys", "list", "-h"}},
		{"help-reconcile", nil, []string{"reconcile", "--help"}},
		{"help-holds", nil, []string{"holds"}},
		{"help-holds-place", nil, []string{"holds", "place", "--help"}},
		{"help-jobs", nil, []string{"jobs"}},
		{"help-jobs-list", nil, []string{"jobs", "list", "--help"}},
		{"help-jobs-watch", nil, []string{"jobs", "watch", "--help"}},
		{"help-receipts", nil, []string{"receipts"}},
		{"help-receipts-show", nil, []string{"receipts", "show", "--help"}},
		{"help-receipts-verify", nil, []string{"receipts", "verify", "--help"}},
		{"help-receipts-rotate-key", nil, []string{"receipts", "rotate-key", "--help"}},
		{"error-receipts-show-malformed-id", nil, []string{"receipts", "show", "--upload", "usr_1"}},
		{"error-receipts-verify-missing-jwks", nil, []string{"receipts", "verify", "receipt.jws"}},
		{"help-audit-verify", nil, []string{"audit", "verify", "--help"}},
		{"version", nil, []string{"version"}},
		{"version-flag", nil, []string{"--version"}},
		{"error-unknown-command", nil, []string{"user"}},
		{"error-unknown-subcommand", nil, []string{"keys", "lst"}},
		{"error-unknown-flag", nil, []string{"users", "create", "--email", "a@example.com", "--addr", ":1"}},
		{"error-missing-flag", nil, []string{"users", "create"}},
		{"error-show-id-and-email", nil, []string{"users", "show", "--id", "usr_1", "--email", "a@example.com"}},
		{"error-subject-without-issuer", nil, []string{"users", "create", "--subject", "alice"}},
		{"error-unknown-scope", nil, []string{"keys", "create", "--user", "usr_1", "--scope", "uploads:read,uploads:remove"}},
		{"error-expires-past", nil, []string{"keys", "create", "--user", "usr_1", "--expires", "2020-01-31"}},
		{"error-setting-env", map[string]string{"RATE_LIMIT": "abc"}, nil},
		{"error-setting-flag", nil, []string{"--rate-limit", "abc"}},
		{"error-setting-negative", map[string]string{"RATE_LIMIT": "-5"}, nil},
		{"error-setting-duration", map[string]string{"UPLOAD_TIMEOUT": "30"}, []string{"reconcile"}},
		{"error-setting-bool", map[string]string{"S3_FORCE_PATH_STYLE": "yes please"}, []string{"users", "delete", "--id", "usr_1"}},
		{"error-setting-choice", map[string]string{"LOG_FORMAT": "xml"}, nil},
		{"error-grace-zero", nil, []string{"reconcile", "--grace", "0s"}},
		{"error-grace-negative", nil, []string{"reconcile", "--grace=-1h"}},
		{"error-grace-malformed", nil, []string{"reconcile", "--grace", "soon"}},
		{"error-jobs-status", nil, []string{"jobs", "list", "--status", "RUNNING,done"}},
		{"error-jobs-limit", nil, []string{"jobs", "list", "--limit", "0"}},
		{"error-jobs-missing-id", nil, []string{"jobs", "cancel"}},
		{"error-jobs-malformed-id", nil, []string{"jobs", "watch", "--id", "usr_00000000000000000000000000000000"}},
		{"error-users-delete-missing-id", nil, []string{"users", "delete", "--detach"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			env := map[string]string{"DATA_DIR": dataDir}
			for k, v := range c.env {
				env[k] = v
			}
			got := runCommandLine(t, env, c.args...)
			text := transcript(c.env, c.args, got)
			path := filepath.Join("testdata", "cli", c.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if text != string(want) {
				t.Errorf("%s differs from the golden file; got:\n%s", path, text)
			}
			if strings.HasPrefix(c.name, "error-") {
				if got.status == 0 {
					t.Error("an error exited 0")
				}
				if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the data directory was created before the error was found: %v", err)
				}
			} else if got.status != 0 {
				t.Errorf("exit status %d", got.status)
			}
		})
	}
}

// transcript is a run as a person would see it in a terminal.
func transcript(env map[string]string, args []string, run commandLineRun) string {
	var b strings.Builder
	b.WriteString("$")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, env[k])
	}
	b.WriteString(" uploads")
	for _, a := range args {
		b.WriteString(" " + a)
	}
	fmt.Fprintf(&b, "\n--- stdout\n%s--- stderr\n%s--- exit status %d\n", run.stdout, run.stderr, run.status)
	return b.String()
}

// TestShellCompletion: the library's completion scripts for bash and zsh.
func TestShellCompletion(t *testing.T) {
	t.Parallel()
	for shell, marker := range map[string]string{"bash": "__start_uploads", "zsh": "#compdef uploads"} {
		run := runCommandLine(t, nil, "completion", shell)
		if run.status != 0 || !strings.Contains(run.stdout, marker) {
			t.Errorf("completion %s: exit status %d, stderr %q, output starts %.80q", shell, run.status, run.stderr, run.stdout)
		}
	}
}

// TestVersionWithoutVCS: a binary built without VCS stamping says so.
func TestVersionWithoutVCS(t *testing.T) {
	t.Parallel()
	got := versionText(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/safedelete/uploads", Version: "(devel)"}}, true)
	want := "uploads (devel)\nmodule:   github.com/safedelete/uploads\n" +
		"revision: unknown (built outside a VCS checkout, or with -buildvcs=false)\ngo:       go1.26.8\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
