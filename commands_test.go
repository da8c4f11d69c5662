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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safedelete/uploads/ent/identity"
	"github.com/safedelete/uploads/ent/retiredidentity"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/embeds3"
	"github.com/safedelete/uploads/internal/objectstore"
	"github.com/safedelete/uploads/internal/signin"
)

// TestReconcileExitCodes: 0 when the bucket and the database agree, 1 when
// reconcile found drift (repaired or not), 2 when it could not tell, so
// that cron and CI can act on the status alone.
func TestReconcileExitCodes(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
		!regexp.MustCompile(`(?m)^`+keyID[1]+` +ukey_[0-9a-f]{8}… +all +\S+ +never +never +-$`).MatchString(run.stdout) {
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
	// Serial: it sets the process's AWS_* environment (t.Setenv).
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
	t.Parallel()
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
	t.Parallel()
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
	// The trail of creates, deletes and purges verifies; an event changed
	// in the database does not, and is named.
	if run := runCommandLine(t, env, "audit", "verify"); run.status != 0 || !strings.Contains(run.stdout, "every chain is whole") {
		t.Errorf("audit verify: exit status %d\n%s%s", run.status, run.stdout, run.stderr)
	}
	db, err := app.OpenDatabase(context.Background(), &config.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var changed int
	rows, err := db.QueryContext(context.Background(), "SELECT max(id) FROM audit_events WHERE owner_id = $1 AND kind = 'DELETED'", userID[1])
	if err != nil || !rows.Next() || rows.Scan(&changed) != nil {
		t.Fatal(err)
	}
	rows.Close()
	if _, err := db.ExecContext(context.Background(), "UPDATE audit_events SET actor = 'nobody' WHERE id = $1", changed); err != nil {
		t.Fatal(err)
	}
	db.Close()
	run = runCommandLine(t, env, "audit", "verify", "--user", userID[1], "--json")
	var report struct {
		Users  int
		Breaks []struct {
			EventID int    `json:"event_id"`
			Problem string `json:"problem"`
		}
	}
	if err := json.Unmarshal([]byte(run.stdout), &report); err != nil || run.status != 1 || report.Users != 1 ||
		len(report.Breaks) != 1 || report.Breaks[0].EventID != changed || report.Breaks[0].Problem != "changed" {
		t.Errorf("audit verify after event %d changed: exit status %d, %v\n%s%s", changed, run.status, err, run.stdout, run.stderr)
	}
}

// TestKeysWithScopesAndExpiry: an operator issues a key limited to some
// scopes until a date, and sees both in the listing; a key without --scope
// has every scope and never expires; a mistyped scope or a past expiry is
// refused, naming what is wrong, and makes no key.
func TestKeysWithScopesAndExpiry(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATA_DIR": filepath.Join(t.TempDir(), "data")}
	run := runCommandLine(t, env, "users", "create", "--email", "ops@example.com", "--json")
	var created struct {
		UserID    string   `json:"user_id"`
		APIKeyID  string   `json:"api_key_id"`
		Scopes    []string `json:"scopes"`
		AllScopes bool     `json:"all_scopes"`
		ExpiresAt *string  `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &created); err != nil || run.status != 0 ||
		len(created.Scopes) != 6 || !created.AllScopes || created.ExpiresAt != nil {
		t.Fatalf("users create --json: %v\n%s%s", err, run.stdout, run.stderr)
	}

	// A key that works through day expires when day ends, UTC.
	day := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
	expires := nextDay(t, day) + "T00:00:00Z"
	run = runCommandLine(t, env, "keys", "create", "--user", created.UserID, "--scope", "uploads:read, uploads:delete", "--expires", day)
	keyID := regexp.MustCompile(`API key (key_[0-9a-f]+) for user`).FindStringSubmatch(run.stdout)
	if run.status != 0 || keyID == nil || !strings.Contains(run.stdout, "Scopes:  uploads:read uploads:delete\n") ||
		!strings.Contains(run.stdout, "Expires: "+expires+"\n") {
		t.Fatalf("keys create --scope --expires:\n%s%s", run.stdout, run.stderr)
	}
	run = runCommandLine(t, env, "keys", "create", "--user", created.UserID, "--scope", "audit:read", "--scope", "webhooks:manage", "--expires", "36h", "--json")
	var limited struct {
		Scopes    []string  `json:"scopes"`
		AllScopes bool      `json:"all_scopes"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &limited); err != nil || strings.Join(limited.Scopes, " ") != "webhooks:manage audit:read" ||
		limited.AllScopes || time.Until(limited.ExpiresAt) < 35*time.Hour || time.Until(limited.ExpiresAt) > 37*time.Hour {
		t.Fatalf("keys create --json: %v\n%s%s", err, run.stdout, run.stderr)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scope", "uploads:read,uploads:remove"}, `unknown scope "uploads:remove" (known: uploads:read, uploads:write, uploads:delete, webhooks:manage, audit:read, holds:manage)`},
		{[]string{"--scope", ""}, "no scope given"},
		{[]string{"--expires", "2020-01-31"}, "--expires=2020-01-31: the key would expire at 2020-02-01T00:00:00Z, which is not in the future"},
		{[]string{"--expires", "next week"}, "want a number of days (90d), a duration (36h), a date"},
	} {
		run := runCommandLine(t, env, append([]string{"keys", "create", "--user", created.UserID}, c.args...)...)
		if run.status != 1 || !strings.Contains(run.stderr, c.want) || strings.Contains(run.stdout, "ukey_") {
			t.Errorf("keys create %v: exit status %d, want 1 and an error saying %q\n%s%s", c.args, run.status, c.want, run.stdout, run.stderr)
		}
	}

	// users create gives its first key the same flags.
	run = runCommandLine(t, env, "users", "create", "--email", "reader@example.com", "--scope", "uploads:read", "--expires", "90d", "--json")
	if err := json.Unmarshal([]byte(run.stdout), &limited); err != nil || strings.Join(limited.Scopes, " ") != "uploads:read" ||
		limited.AllScopes || time.Until(limited.ExpiresAt) < 89*24*time.Hour || time.Until(limited.ExpiresAt) > 90*24*time.Hour {
		t.Errorf("users create --scope --expires --json: %v\n%s%s", err, run.stdout, run.stderr)
	}

	run = runCommandLine(t, env, "keys", "list", "--user", created.UserID)
	for _, row := range []string{
		`(?m)^` + created.APIKeyID + ` +ukey_[0-9a-f]{8}… +all +\S+ +never +never +-$`,
		`(?m)^` + keyID[1] + ` +ukey_[0-9a-f]{8}… +uploads:read,uploads:delete +\S+ +` + expires + ` +never +-$`,
	} {
		if run.status != 0 || !regexp.MustCompile(row).MatchString(run.stdout) {
			t.Errorf("keys list: no row %s in\n%s%s", row, run.stdout, run.stderr)
		}
	}
	if n := strings.Count(run.stdout, "\nkey_"); n != 3 {
		t.Errorf("keys list shows %d keys, want 3 (the refused ones made none):\n%s", n, run.stdout)
	}
	run = runCommandLine(t, env, "keys", "list", "--user", created.UserID, "--json")
	var keys []struct {
		Scopes    []string   `json:"scopes"`
		AllScopes bool       `json:"all_scopes"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &keys); err != nil || len(keys) != 3 ||
		strings.Join(keys[0].Scopes, " ") != "uploads:read uploads:write uploads:delete webhooks:manage audit:read holds:manage" || !keys[0].AllScopes || keys[0].ExpiresAt != nil ||
		strings.Join(keys[1].Scopes, " ") != "uploads:read uploads:delete" || keys[1].AllScopes ||
		keys[1].ExpiresAt == nil || keys[1].ExpiresAt.Format(time.RFC3339) != expires {
		t.Errorf("keys list --json: %v\n%s", err, run.stdout)
	}
	if !strings.Contains(run.stdout, `"expires_at":null`) {
		t.Errorf("keys list --json: a key that never expires has no \"expires_at\":null: %s", run.stdout)
	}
}

// nextDay is the date after day (both YYYY-MM-DD): a key that works through
// day expires at its end.
func nextDay(t *testing.T, day string) string {
	t.Helper()
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		t.Fatal(err)
	}
	return d.AddDate(0, 0, 1).Format(time.DateOnly)
}

// TestUsersWithSubject: an operator makes a user who signs in at
// AUTH_ISSUER (no API key, no email needed), links a second subject, sees
// the identities, and deletes the user with them; a subject belongs to one
// user at a time, and the issuer must be set.
func TestUsersWithSubject(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	const issuer = "https://id.example.com"
	env := map[string]string{"DATA_DIR": dir, "AUTH_ISSUER": issuer, "AUTH_AUDIENCE": "uploads"}

	for _, args := range [][]string{{"users", "create", "--subject", "alice"}, {"users", "link", "--id", "usr_1", "--subject", "alice"}} {
		run := runCommandLine(t, map[string]string{"DATA_DIR": dir}, args...)
		if run.status != 1 || !strings.Contains(run.stderr, "needs AUTH_ISSUER") {
			t.Errorf("%v without AUTH_ISSUER: exit status %d\n%s%s", args, run.status, run.stdout, run.stderr)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created before the error was found: %v", err)
	}

	run := runCommandLine(t, env, "users", "create", "--subject", "alice", "--json")
	var alice struct {
		UserID  string  `json:"user_id"`
		Email   *string `json:"email"`
		Issuer  string  `json:"issuer"`
		Subject string  `json:"subject"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &alice); err != nil || run.status != 0 || alice.UserID == "" ||
		alice.Email != nil || alice.Issuer != issuer || alice.Subject != "alice" || strings.Contains(run.stdout, "api_key") {
		t.Fatalf("users create --subject --json: %v\n%s%s", err, run.stdout, run.stderr)
	}
	run = runCommandLine(t, env, "users", "create", "--subject", "bob", "--email", "bob@example.com")
	bob := regexp.MustCompile(`Created user (usr_[0-9a-f]+) \(bob@example.com\), linked to subject "bob" at ` + issuer).FindStringSubmatch(run.stdout)
	if run.status != 0 || bob == nil || !strings.Contains(run.stdout, "No API key was made") || strings.Contains(run.stdout, "ukey_") {
		t.Fatalf("users create --subject --email:\n%s%s", run.stdout, run.stderr)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "create", "--subject", "alice", "--email", "alice@example.com"}, "already belongs to user " + alice.UserID + "; no user was created"},
		{[]string{"users", "link", "--id", bob[1], "--subject", "alice"}, "already belongs to user " + alice.UserID + "; nothing was linked"},
		{[]string{"users", "link", "--id", "usr_00000000000000000000000000000000", "--subject", "carol"}, "no user with id"},
		{[]string{"users", "create", "--subject", "carol", "--scope", "uploads:read"}, "makes no API key"},
		{[]string{"users", "create", "--subject", "carol "}, "white space"},
	} {
		if run := runCommandLine(t, env, c.args...); run.status != 1 || !strings.Contains(run.stderr, c.want) {
			t.Errorf("%v: exit status %d, want 1 and an error saying %q\n%s%s", c.args, run.status, c.want, run.stdout, run.stderr)
		}
	}

	run = runCommandLine(t, env, "users", "link", "--id", alice.UserID, "--subject", "alice-work")
	if run.status != 0 || !strings.Contains(run.stdout, `Linked subject "alice-work" at `+issuer+" to user "+alice.UserID) {
		t.Errorf("users link:\n%s%s", run.stdout, run.stderr)
	}
	run = runCommandLine(t, env, "users", "link", "--id", alice.UserID, "--subject", "alice-work")
	if run.status != 0 || !strings.Contains(run.stdout, "already linked") {
		t.Errorf("users link again (nothing to do):\n%s%s", run.stdout, run.stderr)
	}

	run = runCommandLine(t, env, "users", "list", "--json")
	var users []struct {
		UserID string  `json:"user_id"`
		Email  *string `json:"email"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &users); err != nil || len(users) != 2 || users[0].UserID != alice.UserID || users[0].Email != nil {
		t.Errorf("users list --json (the refused creations made no user): %v\n%s", err, run.stdout)
	}
	if run := runCommandLine(t, env, "users", "list"); !regexp.MustCompile(`(?m)^` + alice.UserID + ` +no email +\S+ +0 +0$`).MatchString(run.stdout) {
		t.Errorf("users list:\n%s%s", run.stdout, run.stderr)
	}

	run = runCommandLine(t, env, "users", "show", "--id", alice.UserID)
	for _, want := range []string{"(no email)", "Sign-in identities:", "No API keys."} {
		if !strings.Contains(run.stdout, want) {
			t.Errorf("users show: no %q in\n%s%s", want, run.stdout, run.stderr)
		}
	}
	for _, subject := range []string{"alice", "alice-work"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(issuer) + ` +` + subject + ` +\S+$`).MatchString(run.stdout) {
			t.Errorf("users show: no identity %q in\n%s", subject, run.stdout)
		}
	}
	run = runCommandLine(t, env, "users", "show", "--id", alice.UserID, "--json")
	var shown struct {
		Identities []struct {
			Issuer   string    `json:"issuer"`
			Subject  string    `json:"subject"`
			LinkedAt time.Time `json:"linked_at"`
		} `json:"identities"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &shown); err != nil || len(shown.Identities) != 2 ||
		shown.Identities[0].Subject != "alice" || shown.Identities[1].Subject != "alice-work" ||
		shown.Identities[0].Issuer != issuer || time.Since(shown.Identities[0].LinkedAt) > time.Minute {
		t.Errorf("users show --json: %v\n%s", err, run.stdout)
	}

	run = runCommandLine(t, env, "users", "delete", "--id", alice.UserID)
	if run.status != 0 || !strings.Contains(run.stdout, "2 sign-in identities removed") {
		t.Fatalf("users delete:\n%s%s", run.stdout, run.stderr)
	}
	db, err := app.OpenDatabase(context.Background(), &config.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	left := db.Identity.Query().Where(identity.UserID(alice.UserID)).CountX(context.Background())
	retired := db.RetiredIdentity.Query().Where(retiredidentity.ID(signin.Digest(issuer, "alice"))).ExistX(context.Background())
	db.Close()
	if left != 0 || !retired {
		t.Errorf("after users delete: %d identities left; the subject's digest kept: %v", left, retired)
	}
	// The subject is free again: an operator may give it a new user.
	if run := runCommandLine(t, env, "users", "create", "--subject", "alice"); run.status != 0 {
		t.Errorf("users create --subject of a deleted user's subject:\n%s%s", run.stdout, run.stderr)
	}
}
