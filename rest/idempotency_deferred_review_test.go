package rest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestIdempotencyKeyNotFinalQuiet: a keyed delete whose answer is not kept
// (a credential that may not delete: 401) frees its key without an error
// in the logs: nothing went wrong.
func TestIdempotencyKeyNotFinalQuiet(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("a"))
	_, readOnly, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{Scopes: scope.Set(scope.UploadsRead)})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, deleteWithKey(env, readOnly, u.ID, "not-final"), 401, `{"error":"Unauthorized"}`)
	if logs := env.Logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a 401 logged an error:\n%s", logs)
	}
	res := deleteWithKey(env, key, u.ID, "not-final")
	expect(t, res, 200, success(u.ID))
	expectReplayed(t, res, false)
}
