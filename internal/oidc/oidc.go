// Package oidc checks the access tokens of an OpenID Connect issuer: JWTs
// signed by a key the issuer publishes at the jwks_uri of its discovery
// document. The JOSE work is golang-jwt/jwt (parsing, signature, claims)
// and MicahParks/keyfunc with jwkset (the issuer's keys: fetched, cached,
// refreshed in the background and, rate-limited, on an unknown kid); this
// package chooses their options, reads the claims the service uses, and
// remembers the signatures it has checked (verified.go), so that a token
// sent again is not checked with RSA or ECDSA again.
package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/safedelete/uploads/internal/backoff"
	"github.com/safedelete/uploads/internal/scope"
)

// Algorithms are the signature algorithms accepted: asymmetric only, so
// that no token can be signed with what the issuer publishes. Never "none",
// never HMAC.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// ErrRefused is returned for every token that is not accepted, whatever
// the reason: callers see one answer.
var ErrRefused = errors.New("oidc: token refused")

// Options configure a Verifier.
type Options struct {
	Issuer, Audience string
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
	// DefaultScopes are a token's when its scope and scp claims name none
	// of this service's.
	DefaultScopes scope.Set
	// RefreshInterval is how often the keys are fetched again in the
	// background; default 5 minutes.
	RefreshInterval time.Duration
	// UnknownKeyInterval is the least time between two fetches caused by
	// tokens naming a key not in the cache; default 10 seconds. However
	// many such tokens arrive, the issuer sees one request per interval.
	UnknownKeyInterval time.Duration
	// HTTPClient fetches the discovery document and the keys; default a
	// client with a 10-second timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Claims are what the service takes from an accepted token.
type Claims struct {
	Issuer, Subject, Email string
	Scopes                 scope.Set
	// Expires is the token's exp; zero when it has none.
	Expires time.Time
}

// Verifier checks access tokens.
type Verifier struct {
	opts   Options
	parser *jwt.Parser
	// validator is the parser's check of the claims, for remembered tokens.
	validator *jwt.Validator
	verified  verified
	keys      atomic.Pointer[keyfunc.Keyfunc]
	// problem is why there are no keys yet (discovery or the first fetch
	// failed), for readiness.
	problem atomic.Pointer[string]
	// unknownKey lets one token naming a kid not in the cache fetch the
	// keys per UnknownKeyInterval; the others are refused at once.
	unknownKey *rate.Limiter
}

const (
	defaultRefresh    = 5 * time.Minute
	defaultUnknownKey = 10 * time.Second
	fetchTimeout      = 10 * time.Second
	// maxDiscovery bounds the discovery document read.
	maxDiscovery = 1 << 20
)

// New returns a Verifier of opts.Issuer's tokens. It fetches the issuer's
// keys before returning (bounded by ctx); when that fails, it logs why and
// keeps trying in the background until it succeeds or ctx ends, refusing
// every token meanwhile. Cached keys keep working while the issuer is
// unreachable. ctx also ends the background refreshes.
func New(ctx context.Context, opts Options) *Verifier {
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = defaultRefresh
	}
	if opts.UnknownKeyInterval <= 0 {
		opts.UnknownKeyInterval = defaultUnknownKey
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	checks := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithLeeway(opts.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	v := &Verifier{
		opts:       opts,
		unknownKey: rate.NewLimiter(rate.Every(opts.UnknownKeyInterval), 1),
		parser:     jwt.NewParser(checks...),
		validator:  jwt.NewValidator(checks...),
	}
	starting := "the issuer's keys have not been fetched yet"
	v.problem.Store(&starting)
	first, cancel := context.WithTimeout(ctx, fetchTimeout)
	err := v.load(ctx, first)
	cancel()
	if err != nil {
		opts.Logger.Error("fetch the access token issuer's keys; retrying in the background, tokens are refused until then",
			"issuer", opts.Issuer, "error", err)
		go v.retry(ctx)
	}
	return v
}

// retry loads the keys until that works or ctx ends.
func (v *Verifier) retry(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff.Delay(attempt, time.Second, time.Minute)):
		}
		fetch, cancel := context.WithTimeout(ctx, fetchTimeout)
		err := v.load(ctx, fetch)
		cancel()
		if err == nil {
			v.opts.Logger.Info("fetched the access token issuer's keys", "issuer", v.opts.Issuer)
			return
		}
		v.opts.Logger.Warn("fetch the access token issuer's keys", "issuer", v.opts.Issuer, "error", err, "attempt", attempt)
	}
}

// load reads the discovery document and the keys it names; life bounds the
// background refreshes, fetch this attempt.
func (v *Verifier) load(life, fetch context.Context) error {
	jwksURI, err := v.discover(fetch)
	if err != nil {
		v.setProblem(err)
		return err
	}
	noSilentFirstFailure := false
	k, err := keyfunc.NewDefaultOverrideCtx(life, []string{jwksURI}, keyfunc.Override{
		Client:                    v.opts.HTTPClient,
		HTTPTimeout:               fetchTimeout,
		NoErrorReturnFirstHTTPReq: &noSilentFirstFailure,
		RefreshInterval:           v.opts.RefreshInterval,
		// Verify lets a token with an unknown kid through to this refresh
		// at most once per UnknownKeyInterval (v.unknownKey), and refuses
		// the others at once, so this limiter never makes anyone wait.
		// jwkset bounds the wait and the fetch by one timeout together,
		// RateLimitWaitMax: it is the fetch's, so that an issuer a
		// continent away has time to answer.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  fetchTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				v.opts.Logger.WarnContext(ctx, "refresh the access token issuer's keys; the cached keys stay in use", "jwks_uri", u, "error", err)
			}
		},
	})
	if err != nil {
		err = fmt.Errorf("fetch the keys at %s: %w", jwksURI, err)
		v.setProblem(err)
		return err
	}
	v.keys.Store(&k)
	return nil
}

func (v *Verifier) setProblem(err error) {
	s := err.Error()
	v.problem.Store(&s)
}

// discover reads the issuer's discovery document and returns its jwks_uri.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	where := strings.TrimSuffix(v.opts.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery: %s answered %s", where, resp.Status)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscovery)).Decode(&doc); err != nil {
		return "", fmt.Errorf("discovery: %s: %w", where, err)
	}
	switch {
	case doc.Issuer != v.opts.Issuer:
		// OpenID Connect Discovery 1.0, section 4.3: they must be identical.
		return "", fmt.Errorf("discovery: the document names the issuer %q, not %q", doc.Issuer, v.opts.Issuer)
	case doc.JWKSURI == "":
		return "", fmt.Errorf("discovery: the document has no jwks_uri")
	}
	if err := CheckURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri %s: %w", doc.JWKSURI, err)
	}
	return doc.JWKSURI, nil
}

// Check is the readiness of token checks: an error when no key is cached.
func (v *Verifier) Check(ctx context.Context) error {
	k := v.keys.Load()
	if k == nil {
		return errors.New("no signing keys of the access token issuer: " + *v.problem.Load())
	}
	keys, err := (*k).Storage().KeyReadAll(ctx)
	if err != nil {
		return fmt.Errorf("read the cached signing keys: %w", err)
	}
	if len(keys) == 0 {
		return errors.New("the access token issuer publishes no signing keys")
	}
	return nil
}

// CheckURL accepts the URL of an issuer or of its keys: https://, or
// http:// only on a loopback address (local development and tests), with a
// host and without a query, fragment or user.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("want an https:// URL: %w", err)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("want an https:// URL with a host, and no user, query or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("an http:// issuer is accepted only on a loopback address (127.0.0.1, ::1, localhost); use https://")
	default:
		return fmt.Errorf("want an https:// URL")
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// LooksLikeJWT reports whether a bearer credential has the shape of a JWT
// (three dot-separated parts), so that it is checked as a token rather
// than as an API key.
func LooksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2
}

// tokenClaims are the claims read from a token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope string   `json:"scope"`
	Scp   scpClaim `json:"scp"`
	Email string   `json:"email"`
}

// readClaims are the names of the claims tokenClaims reads; timeClaims
// those of them that are NumericDates.
var (
	readClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "scp", "email"}
	timeClaims = []string{"exp", "nbf", "iat"}
)

// UnmarshalJSON reads the claims by their exact names. Claim names are
// case-sensitive (RFC 7519, section 4), but encoding/json matches a field
// to a name in any case, and the last one wins: a token with "SUB" or
// "ISS" beside "sub" or "iss" would name another subject or issuer here
// than at any other verifier. Only the exact names are passed on. A
// NumericDate must be a JSON number (RFC 7519, section 2); golang-jwt
// would also read a string of digits.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	exact := make(map[string]json.RawMessage, len(readClaims))
	for _, name := range readClaims {
		if v, ok := all[name]; ok {
			exact[name] = v
		}
	}
	for _, name := range timeClaims {
		// v is valid JSON: a number is the only value starting so.
		if v, ok := exact[name]; ok && (len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
			return fmt.Errorf("claim %s is not a number", name)
		}
	}
	canonical, err := json.Marshal(exact)
	if err != nil {
		return err
	}
	type plain tokenClaims // without this method
	return json.Unmarshal(canonical, (*plain)(c))
}

// scpClaim is scp as issuers write it: an array (Okta, Auth0's RFC 9068
// profile) or a space-separated string (Entra ID).
type scpClaim []string

func (s *scpClaim) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*s = list
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = strings.Fields(one)
	return nil
}

// errUnknownKeyTooSoon refuses a token naming a key not in the cache when
// the keys were fetched for another such token less than
// UnknownKeyInterval ago.
var errUnknownKeyTooSoon = errors.New("unknown kid, and the keys were fetched for one less than UnknownKeyInterval ago")

// keyFor is k's keyfunc, but lets a token naming a kid not in the cache
// (which makes k fetch the keys) through only when v.unknownKey allows.
func (v *Verifier) keyFor(ctx context.Context, k keyfunc.Keyfunc) jwt.Keyfunc {
	keyOf := k.KeyfuncCtx(ctx)
	return func(token *jwt.Token) (any, error) {
		kid, _ := token.Header["kid"].(string)
		if kid != "" && !cached(ctx, k, kid) && !v.unknownKey.Allow() {
			return nil, errUnknownKeyTooSoon
		}
		return keyOf(token)
	}
}

// cached reports whether k holds the key kid, without fetching.
func cached(ctx context.Context, k keyfunc.Keyfunc, kid string) bool {
	keys, err := k.Storage().KeyReadAll(ctx)
	if err != nil {
		return false
	}
	for _, key := range keys {
		if key.Marshal().KID == kid {
			return true
		}
	}
	return false
}

// Verify checks raw and returns its claims, or ErrRefused (with the reason
// wrapped beside it, for a debug log; never show it to the caller). A token
// accepted before is accepted again without its signature being checked
// again only when a full check would accept it (see verified).
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	k := v.keys.Load()
	if k == nil {
		return Claims{}, fmt.Errorf("%w: no signing keys yet", ErrRefused)
	}
	keyOf := v.keyFor(ctx, *k)
	digest := sha256.Sum256([]byte(raw))
	if t := v.verified.get(digest); t != nil {
		key, err := keyOf(&jwt.Token{Header: t.header, Method: t.method})
		if err == nil && sameKey(t.key, key) && v.validator.Validate(&t.claims) == nil {
			return t.result, nil
		}
		v.verified.forget(digest) // the full check below answers
	}
	result, remember, err := v.check(raw, keyOf)
	if remember != nil {
		v.verified.put(digest, remember)
	}
	return result, err
}

// check is the full check of raw, signature included, with the keys of
// keyOf; it returns what to remember of a token that passed, or nil when it
// must not be (see verified).
func (v *Verifier) check(raw string, keyOf jwt.Keyfunc) (Claims, *verifiedToken, error) {
	var (
		c       tokenClaims
		checked any
	)
	token, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		key, err := keyOf(t)
		checked = key
		return key, err
	})
	if err != nil {
		return Claims{}, nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	// RFC 7515, section 4.1.11: a token whose crit names an extension the
	// recipient does not understand must be refused. golang-jwt does not
	// look at crit, and this service understands no extension.
	if crit, ok := token.Header["crit"]; ok {
		return Claims{}, nil, fmt.Errorf("%w: crit names extensions %v, none of which is understood", ErrRefused, crit)
	}
	if c.Subject == "" {
		return Claims{}, nil, fmt.Errorf("%w: no subject", ErrRefused)
	}
	scopes := scope.FromNames(append(strings.Fields(c.Scope), c.Scp...))
	if scopes == 0 {
		scopes = v.opts.DefaultScopes
	}
	result := Claims{Issuer: c.Issuer, Subject: c.Subject, Email: c.Email, Scopes: scopes}
	if c.ExpiresAt != nil {
		result.Expires = c.ExpiresAt.Time
	}
	// Only a token checked with the one key its kid names is remembered: a
	// token without a kid is tried against each key in turn, and which one
	// matched is not known.
	_, named := token.Header["kid"].(string)
	_, set := checked.(jwt.VerificationKeySet)
	if !named || set || checked == nil {
		return result, nil, nil
	}
	return result, &verifiedToken{header: token.Header, method: token.Method, key: checked, claims: c, result: result}, nil
}
