package rest_test

import (
	"context"
	"testing"

	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestHeldUpload: a held upload is 409 with the documented body (the
// OpenAPI document describes it), stays, and is deleted once released;
// someone else's held upload is still 404.
func TestHeldUpload(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	_, otherKey := env.NewUser()
	mine := env.MustUpload(key, "mine.txt", []byte("mine"))
	h, err := holds.Place(context.Background(), env.Client(), holds.Spec{UploadID: mine.ID, Reason: "case", Actor: audit.CLI}, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, env.DeleteREST(otherKey, mine.ID), 404, notFound)
	expect(t, env.DeleteREST(key, mine.ID), 409, `{"error":"Upload is under legal hold"}`)
	env.AssertIntact(mine)
	if _, err := holds.Release(context.Background(), env.Client(), h.ID, audit.CLI, "", nil); err != nil {
		t.Fatal(err)
	}
	expect(t, env.DeleteREST(key, mine.ID), 200, success(mine.ID))
}
