package idempotency

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/safedelete/uploads/internal/scope"
	"github.com/safedelete/uploads/internal/viewer"
)

// Route is how one route takes part: how its requests are told apart, how
// it words a refusal, and which of its answers are final.
type Route struct {
	Store  *Store
	Logger *slog.Logger
	// Fingerprint returns the fingerprint of a request whose key is taken
	// before it runs (the REST delete), and false for a request the key does
	// not apply to (a method the route refuses anyway). Nil for a route
	// whose requests take their key once they are understood (GraphQL: see
	// BeginOperation).
	Fingerprint func(r *http.Request) (string, bool)
	// Refuse answers a request refused because of its key: 400 for
	// ErrInvalidKey, 422 for ErrReused, 409 for ErrInUse, 403 for
	// ErrNarrower, 500 when the key
	// could not be taken.
	Refuse func(w http.ResponseWriter, r *http.Request, status int, err error)
	// Final reports whether an answer is final, and stored: a retry of a
	// request whose answer was not gets to run again.
	Final func(status int, body []byte) bool
	// Predict, if set, returns the answer a request gets once its effect
	// commits, to store with the effect (see Claim.Predict); nil when it
	// cannot tell.
	Predict func(r *http.Request) *Answer
}

// MaxAnswerBytes bounds an answer that is stored: a larger one (ten
// aliases of a thousand ids) is not, so that one request cannot make the
// server keep many times its size for a day; its retry runs again, each
// field answering from what it recorded.
const MaxAnswerBytes = 256 << 10

// StatusOf is the status a refusal is answered with.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, ErrReused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrInUse):
		return http.StatusConflict
	case errors.Is(err, ErrNarrower):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// request is a keyed request's state, shared by the route's wrapper and,
// for GraphQL, the operation that takes the key.
type request struct {
	route  *Route
	key    string
	keyErr error
	userID string
	scopes scope.Set

	claim   *Claim
	replay  *Answer
	refusal error
}

type requestKey struct{}

// Wrap lets next's requests carry an Idempotency-Key. A request without
// one runs exactly as it would without Wrap. So does one without a valid
// credential: its answer is never stored.
func (rt *Route) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, sent, keyErr := KeyFrom(r.Header)
		if !sent {
			next.ServeHTTP(w, r)
			return
		}
		v, err := viewer.FromContext(r.Context())
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		req := &request{route: rt, key: key, keyErr: keyErr, userID: v.UserID, scopes: v.Scopes}
		ctx := context.WithValue(r.Context(), requestKey{}, req)
		if rt.Fingerprint != nil {
			fingerprint, applies := rt.Fingerprint(r)
			if !applies {
				next.ServeHTTP(w, r)
				return
			}
			var predicted *Answer
			if rt.Predict != nil {
				predicted = rt.Predict(r)
			}
			ctx = req.begin(ctx, fingerprint, predicted)
		}
		rec := &recorder{ResponseWriter: w, req: req}
		defer func() {
			if p := recover(); p != nil {
				// A handler that panics (http.ErrAbortHandler included) has no
				// answer: free its key for the retry, or its claim would renew
				// the lease for as long as the process lives.
				if req.claim != nil {
					_ = req.claim.Release(r.Context())
				}
				panic(p)
			}
		}()
		if req.replay == nil && req.refusal == nil { // decided: nothing to run
			next.ServeHTTP(rec, r.WithContext(ctx))
		}
		req.answer(w, r, rec)
	})
}

// Sent reports whether ctx is a request that sent an Idempotency-Key (with
// a credential): only then is an operation's fingerprint worth computing.
func Sent(ctx context.Context) bool {
	_, ok := ctx.Value(requestKey{}).(*request)
	return ok
}

// BeginOperation takes the request's key, if it sent one, for the
// operation of fingerprint: from then on the request's answer is the
// key's. It returns ctx with the claim (the effects of the operation's
// work are recorded on it), and false when the operation must not run: its
// key is refused or its answer is replayed, which the route's wrapper
// writes in place of whatever the operation's handler answers.
func BeginOperation(ctx context.Context, fingerprint string) (context.Context, bool) {
	req, _ := ctx.Value(requestKey{}).(*request)
	if req == nil {
		return ctx, true
	}
	ctx = req.begin(ctx, fingerprint, nil)
	return ctx, req.replay == nil && req.refusal == nil
}

// begin takes the request's key; predicted, if known, is the answer the
// request gets once its effect commits, stored with the effect.
func (req *request) begin(ctx context.Context, fingerprint string, predicted *Answer) context.Context {
	if req.keyErr != nil {
		req.refusal = req.keyErr
		req.route.Store.count("invalid")
		return ctx
	}
	var claim *Claim
	var answer *Answer
	var err error
	if predicted != nil {
		claim, answer, err = req.route.Store.BeginDeferred(ctx, req.userID, req.scopes, req.key, fingerprint, *predicted)
	} else {
		claim, answer, err = req.route.Store.Begin(ctx, req.userID, req.scopes, req.key, fingerprint)
	}
	switch {
	case err != nil:
		if !errors.Is(err, ErrReused) && !errors.Is(err, ErrInUse) && !errors.Is(err, ErrNarrower) {
			req.route.Logger.ErrorContext(ctx, "idempotency key could not be taken", "error", err)
		}
		req.refusal = err
	case answer != nil:
		req.replay = answer
	default:
		req.claim = claim
		ctx = WithClaim(ctx, claim)
	}
	return ctx
}

// answer writes the request's answer once its handler is done: the stored
// one, a refusal, or the handler's own (stored first if final).
func (req *request) answer(w http.ResponseWriter, r *http.Request, rec *recorder) {
	switch {
	case req.replay != nil:
		w.Header().Set("Content-Type", req.replay.ContentType)
		w.Header().Set(ReplayedHeader, "true")
		w.Header().Set("Content-Length", strconv.Itoa(len(req.replay.Body)))
		w.WriteHeader(req.replay.Status)
		_, _ = w.Write(req.replay.Body)
	case req.refusal != nil:
		req.route.Refuse(w, r, StatusOf(req.refusal), req.refusal)
	case req.claim != nil:
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		body := rec.body.Bytes()
		var err error
		if req.route.Final(status, body) && len(body) <= MaxAnswerBytes {
			err = req.claim.Finish(r.Context(), Answer{Status: status, ContentType: rec.Header().Get("Content-Type"), Body: body})
		} else {
			err = req.claim.Release(r.Context())
		}
		if err != nil {
			// The answer stands; a retry finds the key free once its lease
			// lapses, and replays the effects recorded.
			req.route.Logger.ErrorContext(r.Context(), "idempotent answer not stored", "error", err)
		}
		// What another process wrote for the key first: the same request's
		// answer, or a refusal of the key.
		if stored, refused := req.claim.Superseded(); stored != nil || refused != nil {
			req.replay, req.refusal, req.claim = stored, refused, nil
			rec.Header().Del("Content-Length")
			req.answer(w, r, rec)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// recorder holds back the answer of a request whose key decides it; any
// other answer (a query's, a request with no credential) passes through.
type recorder struct {
	http.ResponseWriter
	req    *request
	held   bool
	wrote  bool
	status int
	body   bytes.Buffer
}

func (rec *recorder) hold() bool {
	if !rec.wrote {
		rec.wrote = true
		rec.held = rec.req.claim != nil || rec.req.replay != nil || rec.req.refusal != nil
	}
	return rec.held
}

func (rec *recorder) WriteHeader(status int) {
	if rec.hold() {
		if rec.status == 0 {
			rec.status = status
		}
		return
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.hold() {
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		return rec.body.Write(b)
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
