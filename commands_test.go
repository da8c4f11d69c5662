package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/objectstore"
)

// TestReconcileExitCodes: 0 when the bucket and the database agree, 1 when
// reconcile found drift (repaired or not), 2 when it could not tell, so
// that cron and CI can act on the status alone.
func TestReconcileExitCodes(t *testing.T) {
	dir := t.TempDir()
	serveFor(t, dir, freeAddr(t), func() {}) // two demo uploads
	env := map[string]string{"DATA_DIR": dir}

	if run := runCommandLine(t, env, "reconcile"); run.status != 0 || !strings.Contains(run.stdout, "No drift") {
		t.Errorf("clean: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	plantObject(t, dir, "stray.bin")
	for _, args := range [][]string{{"reconcile", "--json"}, {"reconcile", "--repair", "--grace", "1h"}} {
		run := runCommandLine(t, env, args...)
		if run.status != 1 || !strings.Contains(run.stdout, "stray.bin") || strings.Contains(run.stderr, "error:") {
			t.Errorf("%v with an orphan: exit status %d\n%s%s", args, run.status, run.stdout, run.stderr)
		}
	}

	notADirectory := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADirectory, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{env, []string{"reconcile", "--grace", "0s"}},
		{env, []string{"reconcile", "--grace", "-10m"}},
		{env, []string{"reconcile", "--no-such-flag"}},
		{env, []string{"reconcile", "extra"}},
		{map[string]string{"DATA_DIR": dir, "UPLOAD_TIMEOUT": "soon"}, []string{"reconcile"}},
		{map[string]string{"DATA_DIR": notADirectory}, []string{"reconcile"}}, // the database cannot be opened
	} {
		if run := runCommandLine(t, c.env, c.args...); run.status != 2 || !strings.HasPrefix(run.stderr, "error: ") {
			t.Errorf("%v %v: exit status %d, want 2\n%s%s", c.env, c.args, run.status, run.stdout, run.stderr)
		}
	}
}

// TestPortTaken: a start on a port in use fails at once, naming the
// setting, and writes nothing to disk.
func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	run := runCommandLine(t, map[string]string{"DATA_DIR": dataDir, "ADDR": ln.Addr().String()})
	if want := "error: ADDR=" + ln.Addr().String() + ": the address is in use"; run.status != 1 || !strings.HasPrefix(run.stderr, want) {
		t.Errorf("exit status %d, stderr %q; want it to start with %q", run.status, run.stderr, want)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

// TestFindUsersAndKeys: an operator who lost the demo key finds the user
// and the key's id from the command line, revokes it and issues another.
func TestFindUsersAndKeys(t *testing.T) {
	dir := t.TempDir()
	out, _ := serveFor(t, dir, freeAddr(t), func() {})
	userID := regexp.MustCompile(`user id: +(usr_[0-9a-f]+)`).FindStringSubmatch(out)
	keyID := regexp.MustCompile(`API key id: +(key_[0-9a-f]+)`).FindStringSubmatch(out)
	if userID == nil || keyID == nil || !strings.Contains(out, "remove "+dir) {
		t.Fatalf("the first start printed no user id, key id or how to start over:\n%s", out)
	}
	env := map[string]string{"DATA_DIR": dir}

	run := runCommandLine(t, env, "users", "list", "--json")
	var users []struct {
		UserID     string `json:"user_id"`
		Email      string `json:"email"`
		ActiveKeys int    `json:"active_keys"`
		Uploads    int    `json:"uploads"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &users); err != nil || len(users) != 1 ||
		users[0].UserID != userID[1] || users[0].Email != "demo@example.com" || users[0].ActiveKeys != 1 || users[0].Uploads != 2 {
		t.Errorf("users list --json: %s %v", run.stdout, err)
	}
	if run := runCommandLine(t, env, "users", "list"); run.status != 0 ||
		!regexp.MustCompile(`(?m)^`+userID[1]+` +demo@example.com +\S+ +1 +2$`).MatchString(run.stdout) {
		t.Errorf("users list:\n%s%s", run.stdout, run.stderr)
	}
	for _, by := range [][]string{{"--id", userID[1]}, {"--email", "Demo@Example.com"}} {
		run := runCommandLine(t, env, append([]string{"users", "show"}, by...)...)
		if run.status != 0 || !strings.Contains(run.stdout, userID[1]+" (demo@example.com)") || !strings.Contains(run.stdout, keyID[1]) {
			t.Errorf("users show %v:\n%s%s", by, run.stdout, run.stderr)
		}
	}
	if run := runCommandLine(t, env, "keys", "list", "--user", userID[1]); run.status != 0 ||
		!regexp.MustCompile(`(?m)^`+keyID[1]+` +ukey_[0-9a-f]{8}… +\S+ +never +-$`).MatchString(run.stdout) {
		t.Errorf("keys list:\n%s%s", run.stdout, run.stderr)
	}

	if run := runCommandLine(t, env, "keys", "revoke", "--id", keyID[1]); run.status != 0 {
		t.Fatalf("keys revoke: %s", run.stderr)
	}
	if run := runCommandLine(t, env, "keys", "create", "--user", userID[1]); run.status != 0 {
		t.Fatalf("keys create: %s", run.stderr)
	}
	run = runCommandLine(t, env, "keys", "list", "--user", userID[1], "--json")
	var keys []struct {
		APIKeyID  string  `json:"api_key_id"`
		Prefix    string  `json:"prefix"`
		RevokedAt *string `json:"revoked_at"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &keys); err != nil || len(keys) != 2 ||
		keys[0].APIKeyID != keyID[1] || keys[0].RevokedAt == nil || keys[1].RevokedAt != nil || !strings.HasPrefix(keys[1].Prefix, "ukey_") {
		t.Errorf("keys list --json after revoke and create: %s %v", run.stdout, err)
	}
	if strings.Contains(run.stdout, `"api_key"`) || strings.Contains(run.stdout, "digest") {
		t.Errorf("keys list shows a secret or its digest: %s", run.stdout)
	}

	for _, args := range [][]string{
		{"users", "show", "--id", "usr_00000000000000000000000000000000"},
		{"users", "show", "--email", "nobody@example.com"},
		{"users", "show"},
		{"keys", "list", "--user", "usr_00000000000000000000000000000000"},
		{"keys", "list"},
	} {
		if run := runCommandLine(t, env, args...); run.status != 1 || !strings.HasPrefix(run.stderr, "error: ") {
			t.Errorf("%v: exit status %d, stderr %q", args, run.status, run.stderr)
		}
	}
}

// TestFirstStartWithBucket: with S3_BUCKET set, the first start writes no
// demo object into the bucket unless asked with --demo.
func TestFirstStartWithBucket(t *testing.T) {
	srv := startEmbeddedS3(t, t.TempDir())
	defer srv.Close(context.Background())
	client := embeddedClient(t, srv)
	if err := objectstore.New(client, "theirs", objectstore.Options{}).EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The service finds its credentials through the SDK's standard chain.
	t.Setenv("AWS_ACCESS_KEY_ID", embeds3.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", embeds3.SecretAccessKey)
	objects := func() int {
		list, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("theirs")})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Contents)
	}
	env := func() map[string]string {
		return map[string]string{
			"DATA_DIR": t.TempDir(), "ADDR": freeAddr(t),
			"S3_BUCKET": "theirs", "S3_ENDPOINT": srv.URL, "S3_FORCE_PATH_STYLE": "true",
		}
	}

	first := env()
	out, _ := serveWith(t, first, nil, func() {})
	if n := objects(); n != 0 || !strings.Contains(out, "No demo data was seeded") || strings.Contains(out, "ukey_") {
		t.Errorf("a first start with S3_BUCKET wrote %d objects and printed:\n%s", n, out)
	}
	cfg := &config.Config{DataDir: first["DATA_DIR"]}
	db, err := app.OpenDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := db.User.Query().CountX(context.Background()); n != 0 {
		t.Errorf("%d users were created", n)
	}
	db.Close()

	out, _ = serveWith(t, env(), []string{"--demo"}, func() {})
	if n := objects(); n != 2 || !strings.Contains(out, "x-upload-id: upl_") {
		t.Errorf("--demo stored %d objects and printed:\n%s", n, out)
	}
}

// TestRequestLogsAndMetrics: with LOG_FORMAT=text, a request's log line is
// text, its duration in duration_ms, and its route labelled "METHOD /path"
// as in the metrics; the playground's icon is served.
func TestRequestLogsAndMetrics(t *testing.T) {
	addr := freeAddr(t)
	base := "http://" + addr
	var metrics string
	_, logs := serveWith(t, map[string]string{"DATA_DIR": t.TempDir(), "ADDR": addr, "LOG_FORMAT": "text"}, nil, func() {
		res, err := http.Get(base + "/favicon.ico")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "image/") {
			t.Errorf("GET /favicon.ico: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		res, err = http.Post(base+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		req, _ := http.NewRequest(http.MethodPut, base+"/graphql", nil)
		if res, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		req, _ = http.NewRequest(http.MethodDelete, base+"/delete-upload-api", nil)
		if res, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res, err = http.Get(base + "/metrics"); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		metrics = string(b)
	})
	for _, route := range []string{"GET /healthz", "GET /favicon.ico", "POST /graphql", "OTHER /graphql", "DELETE /delete-upload-api"} {
		if !strings.Contains(metrics, `uploads_http_requests_total{route="`+route+`",`) {
			t.Errorf("metrics have no requests labelled %q", route)
		}
		if !regexp.MustCompile(`level=INFO msg=request method=\S+ route="` + route + `" status=\d+ duration_ms=[0-9.]+ `).MatchString(logs) {
			t.Errorf("no text log line of a request to %q:\n%s", route, logs)
		}
	}
	if strings.Contains(logs, `{"time"`) {
		t.Errorf("LOG_FORMAT=text wrote JSON:\n%s", logs)
	}
}

// TestAuditCommand: after an account erasure, the operator reads the
// user's trail: every upload's creation and its deletion by the cli.
func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	out, _ := serveFor(t, dir, freeAddr(t), func() {}) // two demo uploads
	userID := regexp.MustCompile(`user id: +(usr_[0-9a-f]+)`).FindStringSubmatch(out)
	if userID == nil {
		t.Fatalf("no user id in:\n%s", out)
	}
	env := map[string]string{"DATA_DIR": dir}
	if run := runCommandLine(t, env, "users", "delete", "--id", userID[1]); run.status != 0 {
		t.Fatalf("users delete: %s%s", run.stdout, run.stderr)
	}
	run := runCommandLine(t, env, "audit", "--user", userID[1], "--json")
	var entries []struct {
		UploadID string `json:"upload_id"`
		Kind     string `json:"kind"`
		Actor    string `json:"actor"`
		Via      string `json:"via"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &entries); err != nil || run.status != 0 {
		t.Fatalf("audit --json: %v\n%s%s", err, run.stdout, run.stderr)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Kind+" by "+e.Actor+" via "+e.Via]++
	}
	for _, want := range []string{"DELETED by cli via CLI", "PURGED by purger via PURGER"} {
		if counts[want] != 2 {
			t.Errorf("%q: %d events, want one per demo upload; trail %v", want, counts[want], counts)
		}
	}
	if len(entries) == 0 || entries[0].Kind != "PURGED" {
		t.Errorf("not newest first: %+v", entries)
	}
	if run := runCommandLine(t, env, "audit", "--user", userID[1], "--limit", "1"); run.status != 0 ||
		strings.Count(run.stdout, "\n") != 2 || !strings.HasPrefix(run.stdout, "TIME") {
		t.Errorf("audit --limit 1 (a header and one row):\n%s%s", run.stdout, run.stderr)
	}
	for _, args := range [][]string{{"audit"}, {"audit", "--user", "usr_00000000000000000000000000000000"}} {
		if run := runCommandLine(t, env, args...); run.status != 1 || !strings.HasPrefix(run.stderr, "error: ") {
			t.Errorf("%v: exit status %d, stderr %q", args, run.status, run.stderr)
		}
	}
}
