package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestLookalikeKeysRefused: what can be learnt about a real key without
// knowing it — its visible prefix (shown in listings) and its stored
// digest (in the database, a backup, a log of it) — authenticates nobody:
// a key that shares the prefix, the digest sent as a key, the digest
// dressed as a key. Each is 401 Unauthorized on REST and UNAUTHENTICATED
// on GraphQL, in either header, and the upload stays; the real key then
// deletes it, so the refusals came from the credentials.
func TestLookalikeKeysRefused(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, secret := env.NewUser()
	up := env.MustUpload(secret, "a.txt", []byte("a"))
	stored, err := env.Client().APIKey.Query().Where(apikey.OwnerID(userID)).Only(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, stored.Prefix) || len(stored.Digest) != 64 {
		t.Fatalf("stored prefix %q, digest %q: not the shape this test assumes", stored.Prefix, stored.Digest)
	}
	// The rest of the key, each hex digit changed.
	twin := []byte(secret)
	for i := len(stored.Prefix); i < len(twin); i++ {
		twin[i] = "123456789abcdef0"[strings.IndexByte("0123456789abcdef", twin[i])]
	}
	lookalikes := map[string]string{
		"same visible prefix": string(twin),
		"the stored digest":   stored.Digest,
		"ukey_ + the digest":  "ukey_" + stored.Digest,
		"the digest, upper":   strings.ToUpper(stored.Digest),
		// Keys are ASCII, as ids are: a Unicode space is part of what
		// was sent, not white space around it.
		"the key, then a no-break space": secret + "\u00a0",
		"an em space, then the key":      "\u2003" + secret,
	}
	for name, credential := range lookalikes {
		for _, header := range []string{"X-Api-Key", "Authorization"} {
			value := credential
			if header == "Authorization" {
				value = "Bearer " + credential
			}
			h := http.Header{header: {value}, "X-Upload-Id": {up.ID}}
			if res := env.Do(http.MethodDelete, "/delete-upload-api", h, nil); res.Status != 401 || res.Body != `{"error":"Unauthorized"}` {
				t.Errorf("%s in %s, REST: %d %s; want 401 {\"error\":\"Unauthorized\"}", name, header, res.Status, res.Body)
			}
			body, _ := json.Marshal(map[string]any{
				"query":     `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`,
				"variables": map[string]any{"id": up.ID},
			})
			h = http.Header{header: {value}, "Content-Type": {"application/json"}}
			res := env.Do(http.MethodPost, "/graphql", h, bytes.NewReader(body))
			var g testenv.GraphQLResponse
			if err := json.Unmarshal([]byte(res.Body), &g); err != nil || len(g.Errors) != 1 ||
				g.Errors[0].Code() != "UNAUTHENTICATED" || g.Errors[0].Message != "Unauthorized" {
				t.Errorf("%s in %s, GraphQL: %d %s; want UNAUTHENTICATED Unauthorized", name, header, res.Status, res.Body)
			}
		}
	}
	env.AssertIntact(up)
	if res := env.DeleteREST(secret, up.ID); res.Status != 200 {
		t.Errorf("the real key: %d %s, want 200", res.Status, res.Body)
	}
}
