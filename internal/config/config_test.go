package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestLimitsAcceptTheirEnds: each end of a setting's limits is a value it
// takes, as are the values the soak tests run with.
func TestLimitsAcceptTheirEnds(t *testing.T) {
	t.Parallel()
	for env, values := range map[string][]string{
		"PURGE_POLL_INTERVAL":          {"10ms", "200ms", "1h"},
		"JANITOR_INTERVAL":             {"10ms", "500ms", "24h"},
		"RATE_LIMIT_WINDOW":            {"1s", "24h"},
		"WEBHOOK_TIMEOUT":              {"100ms", "2s", "1h"},
		"WEBHOOK_MAX_BACKOFF":          {"1s", "5s", "24h"},
		"PURGE_MAX_BACKOFF":            {"1s", "2s", "24h"},
		"PURGE_INLINE_TIMEOUT":         {"10ms", "1h"},
		"SHUTDOWN_TIMEOUT":             {"1s", "24h"},
		"UPLOAD_TIMEOUT":               {"1s", "3s", "168h"},
		"REQUEST_BODY_TIMEOUT":         {"1s", "1h"},
		"UPLOAD_BODY_IDLE_TIMEOUT":     {"1s", "1h"},
		"FAILED_UPLOAD_RETENTION":      {"0", "87600h"},
		"DELETE_RETENTION":             {"0", "720h"},
		"AUDIT_RETENTION":              {"0", "87600h"},
		"JOB_RETENTION":                {"0", "720h", "87600h"},
		"IDEMPOTENCY_RETENTION":        {"1m", "720h"},
		"S3_PART_SIZE":                 {"5242880", "5368709120"},
		"MAX_UPLOAD_SIZE":              {"1", "33554432"},
		"RATE_LIMIT":                   {"0", "1000000"},
		"GRAPHQL_COMPLEXITY_LIMIT":     {"1", "1000000"},
		"GRAPHQL_DEPTH_LIMIT":          {"1", "100"},
		"GRAPHQL_TIMEOUT":              {"1s", "1h"},
		"SUBSCRIPTIONS_PER_CREDENTIAL": {"1", "10000"},
		"AUTH_CLOCK_SKEW":              {"0s", "10m"},
	} {
		for _, v := range values {
			fs := pflag.NewFlagSet("", pflag.ContinueOnError)
			var cfg Config
			settings := Register(fs, &cfg, All)
			env := map[string]string{env: v}
			if err := ApplyEnv(fs, settings, func(k string) (string, bool) { s, ok := env[k]; return s, ok }); err != nil {
				t.Errorf("%s=%s: %v", env, v, err)
			}
			if err := cfg.Check(); err != nil {
				t.Errorf("%s=%s: %v", env, v, err)
			}
		}
	}
}

// TestDefaultsWithinLimits: no default is refused by its own limits.
func TestDefaultsWithinLimits(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("", pflag.ContinueOnError)
	var cfg Config
	for _, s := range Register(fs, &cfg, All) {
		if err := fs.Set(s.Flag, s.Default); err != nil {
			t.Errorf("%s's default %s: %v", s.Env, s.Default, err)
		}
	}
	if err := cfg.Check(); err != nil {
		t.Error(err)
	}
}

// TestCheckParts: the largest upload fits in S3's 10,000 parts of the part
// size, or start-up says which to raise.
func TestCheckParts(t *testing.T) {
	t.Parallel()
	cfg := Defaults()
	cfg.S3PartSize = MinPartSize
	cfg.MaxUploadSize = MaxParts * MinPartSize
	if err := cfg.Check(); err != nil {
		t.Errorf("10,000 parts exactly: %v", err)
	}
	cfg.MaxUploadSize++
	err := cfg.Check()
	if err == nil || !strings.Contains(err.Error(), "MAX_UPLOAD_SIZE=52428800001") || !strings.Contains(err.Error(), "raise S3_PART_SIZE to at least 5242881") {
		t.Errorf("one byte more: %v", err)
	}
}

// TestAuthSettings: access token settings that cannot work together stop
// the start, naming the setting; without AUTH_ISSUER nothing changes.
func TestAuthSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string // "" accepts
	}{
		{map[string]string{}, ""},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com", "AUTH_AUDIENCE": "api"}, ""},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com/realms/app/", "AUTH_AUDIENCE": "api"}, ""},
		{map[string]string{"AUTH_ISSUER": "http://127.0.0.1:4444", "AUTH_AUDIENCE": "api"}, ""},
		{map[string]string{"AUTH_ISSUER": "http://[::1]:4444", "AUTH_AUDIENCE": "api"}, ""},
		{map[string]string{"AUTH_ISSUER": "http://localhost:4444", "AUTH_AUDIENCE": "api"}, ""},
		{map[string]string{"AUTH_ISSUER": "http://id.example.com", "AUTH_AUDIENCE": "api"}, "AUTH_ISSUER=http://id.example.com: an http:// issuer is accepted only on a loopback address"},
		{map[string]string{"AUTH_ISSUER": "http://10.0.0.1", "AUTH_AUDIENCE": "api"}, "only on a loopback address"},
		{map[string]string{"AUTH_ISSUER": "id.example.com", "AUTH_AUDIENCE": "api"}, "AUTH_ISSUER=id.example.com"},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com?x=1", "AUTH_AUDIENCE": "api"}, "AUTH_ISSUER="},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com"}, "AUTH_AUDIENCE is required with AUTH_ISSUER"},
		{map[string]string{"AUTH_AUDIENCE": "api"}, "AUTH_AUDIENCE=api is set but AUTH_ISSUER is not"},
		{map[string]string{"AUTH_CREATE_USERS": "true"}, "AUTH_CREATE_USERS=true needs AUTH_ISSUER"},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com", "AUTH_AUDIENCE": "api", "AUTH_DEFAULT_SCOPES": "uploads:read everything"}, `AUTH_DEFAULT_SCOPES=uploads:read everything: unknown scope "everything"`},
		{map[string]string{"AUTH_ISSUER": "https://id.example.com", "AUTH_AUDIENCE": "api", "AUTH_DEFAULT_SCOPES": " "}, "AUTH_DEFAULT_SCOPES= : no scope given"},
	} {
		fs := pflag.NewFlagSet("", pflag.ContinueOnError)
		var cfg Config
		settings := Register(fs, &cfg, All)
		if err := ApplyEnv(fs, settings, func(k string) (string, bool) { s, ok := tc.env[k]; return s, ok }); err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		err := cfg.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one containing %q", tc.env, err, tc.want)
		}
	}
}

// TestReceiptKeyPath: the receipt keys live in DATA_DIR unless
// RECEIPT_KEY_FILE names a file.
func TestReceiptKeyPath(t *testing.T) {
	t.Parallel()
	cfg := Defaults()
	cfg.DataDir = "/var/lib/uploads"
	if got := cfg.ReceiptKeyPath(); got != "/var/lib/uploads/receipt-keys.json" {
		t.Errorf("default: %s", got)
	}
	cfg.ReceiptKeyFile = "/etc/uploads/receipts.json"
	if got := cfg.ReceiptKeyPath(); got != cfg.ReceiptKeyFile {
		t.Errorf("RECEIPT_KEY_FILE: %s", got)
	}
}
