package auth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/auth"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// TestMiddleware: which credentials make a request act for the key's owner,
// which leave it anonymous, and a database that cannot be asked is an
// error in the context, not an anonymous caller.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client, err := database.Open(ctx, database.SQLiteURL(filepath.Join(t.TempDir(), "auth.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	owner, key, secret, err := admin.CreateUser(ctx, client, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, revokedKey, revoked, err := admin.CreateUser(ctx, client, "b@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apikey.Revoke(ctx, client, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var got viewer.Viewer
	var gotErr error
	handler := auth.Middleware(apikey.NewAuthenticator(client), nil, slog.New(slog.NewTextHandler(&logs, nil)))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, gotErr = viewer.FromContext(r.Context())
		}))
	serve := func(header http.Header) {
		got, gotErr = viewer.Viewer{}, nil
		r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		r.Header = header
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	mine := viewer.Viewer{UserID: owner.ID, APIKeyID: key.ID, Scopes: scope.All}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   viewer.Viewer // zero: anonymous
	}{
		{"x-api-key", http.Header{"X-Api-Key": {secret}}, mine},
		{"x-api-key with blanks around", http.Header{"X-Api-Key": {"  " + secret + "\t"}}, mine},
		{"bearer", http.Header{"Authorization": {"Bearer " + secret}}, mine},
		{"bearer, any case", http.Header{"Authorization": {"bEARER  " + secret + " "}}, mine},
		{"x-api-key wins over a bad bearer", http.Header{"X-Api-Key": {secret}, "Authorization": {"Bearer ukey_nope"}}, mine},
		{"blank x-api-key, then bearer", http.Header{"X-Api-Key": {"  "}, "Authorization": {"Bearer " + secret}}, mine},
		{"nothing", http.Header{}, viewer.Viewer{}},
		{"another scheme", http.Header{"Authorization": {"Basic " + secret}}, viewer.Viewer{}},
		{"bearer without a space", http.Header{"Authorization": {"Bearer" + secret}}, viewer.Viewer{}},
		{"the key alone in Authorization", http.Header{"Authorization": {secret}}, viewer.Viewer{}},
		{"unknown key", http.Header{"X-Api-Key": {"ukey_" + strings.Repeat("0", 64)}}, viewer.Viewer{}},
		{"malformed key", http.Header{"X-Api-Key": {"hunter2"}}, viewer.Viewer{}},
		{"revoked key", http.Header{"X-Api-Key": {revoked}}, viewer.Viewer{}},
	} {
		serve(tc.header)
		switch {
		case tc.want == (viewer.Viewer{}) && !errors.Is(gotErr, viewer.ErrAnonymous):
			t.Errorf("%s: viewer %+v, error %v; want anonymous", tc.name, got, gotErr)
		case tc.want != (viewer.Viewer{}) && (gotErr != nil || got != tc.want):
			t.Errorf("%s: viewer %+v, error %v; want %+v", tc.name, got, gotErr, tc.want)
		}
	}

	client.Close() // the database cannot be asked: neither the owner nor anonymous
	serve(http.Header{"X-Api-Key": {secret}})
	if gotErr == nil || errors.Is(gotErr, viewer.ErrAnonymous) {
		t.Errorf("database closed: viewer %+v, error %v; want the database's error", got, gotErr)
	}
	if !strings.Contains(logs.String(), "authenticate request") || strings.Contains(logs.String(), secret) {
		t.Errorf("the failure is not logged, or the key is:\n%s", logs.String())
	}
}
