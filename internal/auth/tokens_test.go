package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/identity"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/oidc/oidctest"
	"github.com/safedelete/uploads/internal/signin"
	"github.com/safedelete/uploads/internal/testenv"
)

const audience = "https://uploads.example/api"

const unauthorizedBody = `{"error":"Unauthorized"}`

// tokenEnv is a service that accepts the access tokens of a test issuer.
type tokenEnv struct {
	*testenv.Env
	iss *oidctest.Issuer
	key oidctest.Key
}

func newTokenEnv(t *testing.T, createUsers bool) tokenEnv {
	t.Helper()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	e := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.AuthIssuer = iss.URL
		c.AuthAudience = audience
		c.AuthCreateUsers = createUsers
	}})
	return tokenEnv{Env: e, iss: iss, key: key}
}

// link gives the user the identity (the test issuer, subject).
func (te tokenEnv) link(t *testing.T, userID, subject string) {
	t.Helper()
	ctx := context.Background()
	err := database.WithTx(ctx, te.Client(), func(tx *ent.Tx) error {
		_, _, err := signin.Link(ctx, tx, userID, te.iss.URL, subject)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// token is a valid token of subject, with overrides.
func (te tokenEnv) token(subject string, claims oidctest.Claims) string {
	c := oidctest.Claims{"sub": subject, "aud": audience}
	for k, v := range claims {
		c[k] = v
	}
	return te.iss.Token(te.key, c)
}

// TestAccessTokensDelete: a valid access token of a linked subject deletes
// its user's upload through REST and GraphQL, signed with RS256, ES256 or
// EdDSA, and within the clock skew; the audit trail names the identity,
// never the token.
func TestAccessTokensDelete(t *testing.T) {
	t.Parallel()
	te := newTokenEnv(t, false)
	es, ed := oidctest.NewKey(t, "ES256"), oidctest.NewKey(t, "EdDSA")
	te.iss.Publish(te.key, es, ed)
	userID, apiKey := te.NewUser()
	te.link(t, userID, "alice")

	tokens := map[string]string{
		"RS256":                      te.token("alice", nil),
		"ES256":                      te.iss.Token(es, oidctest.Claims{"sub": "alice", "aud": audience}),
		"EdDSA":                      te.iss.Token(ed, oidctest.Claims{"sub": "alice", "aud": []string{"other", audience}}),
		"expired 30s ago, in skew":   te.token("alice", oidctest.Claims{"exp": time.Now().Add(-30 * time.Second).Unix()}),
		"nbf in 30s, in skew":        te.token("alice", oidctest.Claims{"nbf": time.Now().Add(30 * time.Second).Unix()}),
		"scope names ours and more":  te.token("alice", oidctest.Claims{"scope": "openid uploads:delete profile"}),
		"scp as an array":            te.token("alice", oidctest.Claims{"scp": []string{"uploads:delete"}}),
		"scp as a string (Entra ID)": te.token("alice", oidctest.Claims{"scp": "uploads:read uploads:delete"}),
	}
	for name, token := range tokens {
		t.Run(name, func(t *testing.T) {
			up := te.MustUpload(apiKey, "a.txt", []byte("a"))
			res := te.DeleteREST(token, up.ID)
			if res.Status != http.StatusOK || res.Body != `{"message":"Upload `+up.ID+` deleted successfully"}` {
				t.Fatalf("REST delete with a token: %d %s", res.Status, res.Body)
			}
			up = te.MustUpload(apiKey, "b.txt", []byte("b"))
			g := te.GraphQL(token, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": up.ID})
			if len(g.Errors) > 0 {
				t.Fatalf("GraphQL delete with a token: %+v", g.Errors)
			}
			if n, _ := te.Client().Upload.Query().Count(context.Background()); n != 0 {
				t.Fatalf("%d uploads left", n)
			}
		})
	}

	g := te.GraphQL(apiKey, `{ viewer { auditEvents(first: 1, where: {kind: DELETED}) { edges { node { actor via } } } } }`, nil)
	var data struct {
		Viewer struct {
			AuditEvents struct {
				Edges []struct{ Node struct{ Actor, Via string } }
			}
		}
	}
	if err := g.Decode(&data); err != nil || len(data.Viewer.AuditEvents.Edges) == 0 {
		t.Fatalf("audit events: %v %+v", err, g.Errors)
	}
	if actor := data.Viewer.AuditEvents.Edges[0].Node.Actor; actor != "oidc:"+te.iss.URL+"#alice" {
		t.Errorf("the audit trail names %q, want the issuer and subject", actor)
	}
	logs := te.Logs.String()
	for name, token := range tokens {
		if strings.Contains(logs, token) || strings.Contains(logs, token[strings.LastIndexByte(token, '.')+1:]) {
			t.Errorf("the %s token appears in the logs", name)
		}
	}
}

// TestAccessTokenRefusals: every token that must not be accepted gets the
// contract's 401 through REST and UNAUTHENTICATED through GraphQL, and
// deletes nothing, whether or not unknown subjects make users (with
// AUTH_CREATE_USERS a check left out would let the token make a user of
// its own rather than be refused: the test sees that too).
func TestAccessTokenRefusals(t *testing.T) {
	t.Parallel()
	for _, createUsers := range []bool{false, true} {
		t.Run(fmt.Sprintf("AUTH_CREATE_USERS=%v", createUsers), func(t *testing.T) {
			t.Parallel()
			accessTokenRefusals(t, createUsers)
		})
	}
}

func accessTokenRefusals(t *testing.T, createUsers bool) {
	te := newTokenEnv(t, createUsers)
	userID, apiKey := te.NewUser()
	te.link(t, userID, "alice")
	strangerID, _ := te.NewUser()
	te.link(t, strangerID, "bob")
	goneID, _ := te.NewUser()
	te.link(t, goneID, "carol")
	carolsToken := te.token("carol", nil)
	if _, err := admin.EraseUser(context.Background(), te.Client(), te.App.Resolver, goneID); err != nil {
		t.Fatal(err)
	}

	valid := te.token("alice", nil)
	parts := strings.Split(valid, ".")
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &payload)
	payload["sub"] = "bob" // someone else's uploads, same signature
	changed, _ := json.Marshal(payload)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(changed) + "." + parts[2]

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"iss": te.iss.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(te.key.Private.Public())
	publicPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hmacWithPublicKey := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": te.iss.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix(),
	})
	hmacWithPublicKey.Header["kid"] = te.key.ID
	hs256, err := hmacWithPublicKey.SignedString(publicPEM)
	if err != nil {
		t.Fatal(err)
	}
	unpublished := oidctest.NewKey(t, "RS256")
	// Signed by the issuer's key, but its crit names an extension the
	// service does not understand (RFC 7515, section 4.1.11).
	withCrit := jwt.NewWithClaims(te.key.Method, jwt.MapClaims{
		"iss": te.iss.URL, "sub": "alice", "aud": audience, "exp": time.Now().Add(time.Hour).Unix(),
	})
	withCrit.Header["kid"] = te.key.ID
	withCrit.Header["crit"] = []string{"urn:example:unknown"}
	withCrit.Header["urn:example:unknown"] = true
	critical, err := withCrit.SignedString(te.key.Private)
	if err != nil {
		t.Fatal(err)
	}

	refusals := map[string]string{
		"expired":                          te.token("alice", oidctest.Claims{"exp": time.Now().Add(-2 * time.Minute).Unix()}),
		"no expiry":                        te.token("alice", oidctest.Claims{"exp": nil}),
		"not yet valid":                    te.token("alice", oidctest.Claims{"nbf": time.Now().Add(2 * time.Minute).Unix()}),
		"other audience":                   te.token("alice", oidctest.Claims{"aud": "https://other.example"}),
		"no audience":                      te.token("alice", oidctest.Claims{"aud": nil}),
		"other issuer":                     te.token("alice", oidctest.Claims{"iss": "https://issuer.example"}),
		"no subject":                       te.token("", nil),
		"alg none":                         none,
		"HS256 keyed with the public key":  hs256,
		"a key the issuer never published": te.iss.Token(unpublished, oidctest.Claims{"sub": "alice", "aud": audience}),
		"payload changed after signing":    tampered,
		"crit names an unknown extension":  critical,
		// Claim names are case-sensitive (RFC 7519, section 4), and a
		// NumericDate is a JSON number (section 2).
		"EXP instead of exp":     te.token("alice", oidctest.Claims{"exp": nil, "EXP": time.Now().Add(time.Hour).Unix()}),
		"SUB instead of sub":     te.token("", oidctest.Claims{"sub": nil, "SUB": "alice"}),
		"exp a string":           te.token("alice", oidctest.Claims{"exp": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}),
		"not a JWT":              "a.b.c",
		"unknown subject":        te.token("dave", nil),
		"a deleted user's token": carolsToken,
		"read-only token":        te.token("alice", oidctest.Claims{"scope": "uploads:read"}),
	}
	if createUsers {
		delete(refusals, "unknown subject") // it makes its user
	}
	up := te.MustUpload(apiKey, "kept.txt", []byte("kept"))
	for name, token := range refusals {
		t.Run(name, func(t *testing.T) {
			res := te.DeleteREST(token, up.ID)
			if res.Status != http.StatusUnauthorized || res.Body != unauthorizedBody {
				t.Errorf("REST: %d %s, want 401 %s", res.Status, res.Body, unauthorizedBody)
			}
			g := te.GraphQL(token, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": up.ID})
			want := "UNAUTHENTICATED"
			if name == "read-only token" {
				want = "FORBIDDEN"
			}
			if len(g.Errors) != 1 || g.Errors[0].Code() != want {
				t.Errorf("GraphQL: %+v, want %s", g.Errors, want)
			}
			te.AssertIntact(up)
		})
	}
}

// TestKeyRefusals: an API key is refused once it has expired, and a key
// without uploads:delete cannot delete; neither deletes anything.
func TestKeyRefusals(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	userID, apiKey := e.NewUser()
	up := e.MustUpload(apiKey, "kept.txt", []byte("kept"))

	secret, prefix, digest := apikey.Generate()
	e.Client().APIKey.Create().SetOwnerID(userID).SetPrefix(prefix).SetDigest(digest).
		SetExpiresAt(time.Now().Add(-time.Second)).ExecX(ctx)
	if res := e.DeleteREST(secret, up.ID); res.Status != http.StatusUnauthorized || res.Body != unauthorizedBody {
		t.Errorf("expired key: %d %s", res.Status, res.Body)
	}
	secret, prefix, digest = apikey.Generate()
	e.Client().APIKey.Create().SetOwnerID(userID).SetPrefix(prefix).SetDigest(digest).
		SetScopes([]string{"uploads:read"}).ExecX(ctx)
	if res := e.DeleteREST(secret, up.ID); res.Status != http.StatusUnauthorized || res.Body != unauthorizedBody {
		t.Errorf("read-only key, REST: %d %s", res.Status, res.Body)
	}
	g := e.GraphQL(secret, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": up.ID})
	if len(g.Errors) != 1 || g.Errors[0].Code() != "FORBIDDEN" || !strings.Contains(g.Errors[0].Message, "uploads:delete") {
		t.Errorf("read-only key, GraphQL: %+v, want FORBIDDEN naming uploads:delete", g.Errors)
	}
	g = e.GraphQL(secret, `query($id: ID!) { upload(id: $id) { id } }`, map[string]any{"id": up.ID})
	if len(g.Errors) != 0 {
		t.Errorf("read-only key reading: %+v", g.Errors)
	}
	e.AssertIntact(up)
}

// TestFirstTokensMakeOneUser: with AUTH_CREATE_USERS, the first requests of
// an unknown subject, all at once, make exactly one user with one identity,
// named by the email claim; an address another user has is not taken (no
// account is joined by address), and the new user starts with nothing.
func TestFirstTokensMakeOneUser(t *testing.T) {
	t.Parallel()
	te := newTokenEnv(t, true)
	ctx := context.Background()
	token := te.token("erin", oidctest.Claims{"email": "erin@example.com"})
	const callers = 8
	var wg sync.WaitGroup
	errs := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := te.GraphQL(token, `{ viewer { id email uploads(first: 1) { totalCount } } }`, nil)
			if len(g.Errors) > 0 {
				errs <- fmt.Sprint(g.Errors)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a first request: %s", e)
	}
	ids, err := te.Client().Identity.Query().Where(identity.Subject("erin")).All(ctx)
	if err != nil || len(ids) != 1 {
		t.Fatalf("identities of erin: %d, %v", len(ids), err)
	}
	u := te.Client().User.GetX(ctx, ids[0].UserID)
	if u.Email == nil || *u.Email != "erin@example.com" {
		t.Errorf("erin's user has email %v", u.Email)
	}
	if n := te.Client().User.Query().CountX(ctx); n != 1 {
		t.Errorf("%d users, want 1", n)
	}

	// Someone else signs in claiming erin's address: a user of their own, without it.
	g := te.GraphQL(te.token("mallory", oidctest.Claims{"email": "erin@example.com"}), `{ viewer { id email } }`, nil)
	var data struct{ Viewer struct{ ID, Email *string } }
	if err := g.Decode(&data); err != nil || len(g.Errors) > 0 || data.Viewer.ID == nil {
		t.Fatalf("mallory: %v %+v", err, g.Errors)
	}
	if *data.Viewer.ID == u.ID || data.Viewer.Email != nil {
		t.Errorf("mallory got user %s with email %v", *data.Viewer.ID, data.Viewer.Email)
	}
}

// TestAcceptedTokenAfterRetire: a token that has deleted uploads is
// refused on its next request once its identity no longer belongs to the
// user (as when the user is deleted), although its signature was checked
// before.
func TestAcceptedTokenAfterRetire(t *testing.T) {
	t.Parallel()
	te := newTokenEnv(t, false)
	userID, apiKey := te.NewUser()
	te.link(t, userID, "alice")
	token := te.token("alice", nil)
	for range 2 {
		up := te.MustUpload(apiKey, "a.txt", []byte("a"))
		if res := te.DeleteREST(token, up.ID); res.Status != http.StatusOK {
			t.Fatalf("REST delete with a token: %d %s", res.Status, res.Body)
		}
	}
	ctx := context.Background()
	if err := database.WithTx(ctx, te.Client(), func(tx *ent.Tx) error { _, err := signin.Retire(ctx, tx, userID); return err }); err != nil {
		t.Fatal(err)
	}
	up := te.MustUpload(apiKey, "kept.txt", []byte("kept"))
	if res := te.DeleteREST(token, up.ID); res.Status != http.StatusUnauthorized || res.Body != unauthorizedBody {
		t.Errorf("REST after the identity was retired: %d %s, want 401 %s", res.Status, res.Body, unauthorizedBody)
	}
	te.AssertIntact(up)
}

// TestDefaultScopes: a token naming none of this service's scopes gets
// AUTH_DEFAULT_SCOPES, which an operator may narrow; a token that names
// ours gets exactly those.
func TestDefaultScopes(t *testing.T) {
	t.Parallel()
	key := oidctest.NewKey(t, "RS256")
	iss := oidctest.Start(t, key)
	e := testenv.New(t, testenv.Options{Configure: func(c *config.Config) {
		c.AuthIssuer = iss.URL
		c.AuthAudience = audience
		c.AuthDefaultScopes = "uploads:read"
	}})
	te := tokenEnv{Env: e, iss: iss, key: key}
	userID, apiKey := te.NewUser()
	te.link(t, userID, "alice")
	up := te.MustUpload(apiKey, "a.txt", []byte("a"))

	for _, token := range []string{te.token("alice", nil), te.token("alice", oidctest.Claims{"scope": "openid profile"})} {
		g := te.GraphQL(token, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": up.ID})
		if len(g.Errors) != 1 || g.Errors[0].Code() != "FORBIDDEN" {
			t.Errorf("a token with the narrowed default scopes deleting: %+v", g.Errors)
		}
		g = te.GraphQL(token, `query($id: ID!) { upload(id: $id) { id } }`, map[string]any{"id": up.ID})
		if len(g.Errors) != 0 {
			t.Errorf("a token with the default uploads:read reading: %+v", g.Errors)
		}
	}
	te.AssertIntact(up)
	if res := te.DeleteREST(te.token("alice", oidctest.Claims{"scope": "uploads:delete"}), up.ID); res.Status != http.StatusOK {
		t.Errorf("a token naming uploads:delete: %d %s", res.Status, res.Body)
	}
}
