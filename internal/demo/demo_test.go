package demo_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/internal/demo"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestCurlLineNamesAStoredUpload: a demo upload that failed to store is
// never the one the printed curl line names.
func TestCurlLineNamesAStoredUpload(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	// The first demo file is text/plain: every attempt to store it fails.
	env.S3.FailWhen(func(r *http.Request) bool {
		return r.Method == http.MethodPut && r.Header.Get("Content-Type") == "text/plain"
	})
	var out bytes.Buffer
	if err := demo.SeedIfEmpty(context.Background(), env.Client(), env.App.Resolver, env.URL, demo.Options{Seed: true}, &out); err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`x-upload-id: (upl_[0-9a-f]+)`).FindStringSubmatch(out.String())
	if named == nil {
		t.Fatalf("no curl line:\n%s", out.String())
	}
	up := env.Client().Upload.GetX(context.Background(), named[1])
	if up.Status != upload.StatusCOMPLETED || up.Filename != "notes.md" {
		t.Errorf("the curl line names %s (%s), not the stored upload", up.Filename, up.Status)
	}
	if failed := env.Client().Upload.Query().Where(upload.StatusEQ(upload.StatusFAILED)).CountX(context.Background()); failed != 1 ||
		!strings.Contains(out.String(), "with 1 upload.") || !strings.Contains(out.String(), "1 more could not be stored") {
		t.Errorf("%d failed uploads; printed:\n%s", failed, out.String())
	}
}

// TestNoCurlLineWhenNothingWasStored: with every demo upload failed, the
// key is still printed, and no curl line names a failed upload.
func TestNoCurlLineWhenNothingWasStored(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	env.S3.FailWhen(func(r *http.Request) bool { return r.Method == http.MethodPut })
	var out bytes.Buffer
	if err := demo.SeedIfEmpty(context.Background(), env.Client(), env.App.Resolver, env.URL, demo.Options{Seed: true}, &out); err != nil {
		t.Fatal(err)
	}
	if text := out.String(); strings.Contains(text, "x-upload-id") || !strings.Contains(text, "API key:    ukey_") {
		t.Errorf("printed:\n%s", text)
	}
}

// TestNoSeedUnasked: without Seed, a first start creates nothing and says
// how to create a user; a later start says nothing.
func TestNoSeedUnasked(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	var out bytes.Buffer
	if err := demo.SeedIfEmpty(context.Background(), env.Client(), env.App.Resolver, env.URL, demo.Options{}, &out); err != nil {
		t.Fatal(err)
	}
	if n := env.Client().User.Query().CountX(context.Background()); n != 0 || !strings.Contains(out.String(), "uploads users create --email") {
		t.Errorf("%d users; printed:\n%s", n, out.String())
	}
	env.NewUser()
	out.Reset()
	if err := demo.SeedIfEmpty(context.Background(), env.Client(), env.App.Resolver, env.URL, demo.Options{Seed: true}, &out); err != nil || out.Len() > 0 {
		t.Errorf("a start with users printed %q (%v)", out.String(), err)
	}
}
