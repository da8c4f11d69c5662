package httpserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/auth"
)

// keepAliveInterval is how often an idle stream carries a keep-alive (an
// SSE comment, a WebSocket ping the client must answer): proxies close
// connections that say nothing for a minute or so, and a WebSocket client
// that stops answering is dropped after twice this.
const keepAliveInterval = 25 * time.Second

// shutdownGrace is how long a WebSocket stays open after the server began
// to shut down, for its subscriptions' last messages (SHUTTING_DOWN) to be
// written before the close frame.
const shutdownGrace = 250 * time.Millisecond

// addSubscriptionTransports adds gqlgen's transports of subscriptions:
// graphql-sse in its single connection mode (a POST that accepts
// text/event-stream; added before graphQLOverHTTP, which takes every other
// JSON POST as before) and graphql-transport-ws over WebSocket.
func addSubscriptionTransports(srv *handler.Server, cfg Config) {
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: keepAliveInterval})
	srv.AddTransport(transport.Websocket{
		// The origin is checked before the upgrade, by CORS_ALLOWED_ORIGINS
		// (checkWebSocketOrigin).
		Implementation:   transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}},
		InitFunc:         websocketInit(cfg),
		InitTimeout:      10 * time.Second,
		PingPongInterval: keepAliveInterval,
	})
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if sock, ok := ctx.Value(socketKey{}).(*socket); ok {
			// Over a WebSocket each operation is a request of its own: its
			// credential checked again (a key revoked since the upgrade no
			// longer works) and counted by the rate limit (the upgrade paid
			// for the first).
			if sock.secret != "" {
				ctx = auth.WithCredential(ctx, cfg.Keys, cfg.Tokens, cfg.Logger, sock.secret, sock.bearer)
			}
			if sock.operations.Add(1) > 1 && !cfg.Limiter.Allow(ctx, sock.remoteAddr) {
				return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{publicGQLError(
					&graph.PublicError{Code: CodeRateLimited, Message: "Too many requests"})}})
			}
		}
		if graphql.GetOperationContext(ctx).Operation.Operation == ast.Subscription {
			ctx = graph.WithStreamEnd(ctx)
		}
		return next(ctx)
	})
	// A stream that ended other than by its reader (too slow, credential
	// revoked, shutdown) says why in its last message, then completes.
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp != nil {
			return resp
		}
		if err := graph.StreamEndError(ctx); err != nil {
			graphql.AddError(ctx, err)
			return &graphql.Response{Errors: graphql.GetErrors(ctx)}
		}
		return nil
	})
}

// websocketInit authenticates a WebSocket by its connection_init payload
// when it carries a credential ({"x-api-key": "ukey_…"} or
// {"Authorization": "Bearer …"}, names in any case), exactly as the
// headers of a request are (a browser cannot set headers on a WebSocket);
// otherwise the upgrade request's headers stand. It ties the connection to
// the event feed, so that a server shutdown closes it.
func websocketInit(cfg Config) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		headers := http.Header{}
		for name, value := range payload {
			if s, ok := value.(string); ok {
				headers.Set(name, s)
			}
		}
		if secret, bearer := auth.Credential(headers); secret != "" {
			ctx = auth.WithCredential(ctx, cfg.Keys, cfg.Tokens, cfg.Logger, secret, bearer)
			if sock, ok := ctx.Value(socketKey{}).(*socket); ok {
				ctx = context.WithValue(ctx, socketKey{}, &socket{secret: secret, bearer: bearer, remoteAddr: sock.remoteAddr})
			}
		}
		if feed := cfg.Resolver.Events(); feed != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			go func() { // ends with the connection, whose request's context ends then
				select {
				case <-feed.Done():
					select {
					case <-time.After(shutdownGrace):
					case <-ctx.Done():
					}
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		return ctx, nil, nil
	}
}

// checkWebSocketOrigin refuses, with 403, a WebSocket upgrade from a
// browser page whose origin CORS_ALLOWED_ORIGINS does not allow: a
// WebSocket is not subject to CORS, so the browser would let any page
// open one with its user's cookies and credentials. Requests without an
// Origin (not from a browser) and from the server's own origin pass.
func checkWebSocketOrigin(origins []string, next http.Handler) http.Handler {
	var allowed *cors.Cors
	if len(origins) > 0 {
		allowed = cors.New(cors.Options{AllowedOrigins: origins})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if origin == "" || sameHost(origin, r.Host) || (allowed != nil && allowed.OriginAllowed(r)) {
			secret, bearer := auth.Credential(r.Header)
			sock := &socket{secret: secret, bearer: bearer, remoteAddr: r.RemoteAddr}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), socketKey{}, sock)))
			return
		}
		writeGraphQLError(w, r, http.StatusForbidden, &graph.PublicError{
			Code: graph.CodeForbidden, Message: "This origin may not open a WebSocket here (CORS_ALLOWED_ORIGINS)",
		})
	})
}

// socket is what a WebSocket's operations are authenticated with: the
// credential of its upgrade's headers, or of its connection_init payload.
// It never leaves the process's memory.
type socket struct {
	secret     string
	bearer     bool
	remoteAddr string
	operations atomic.Int64
}

type socketKey struct{}

// streamWrites lets gqlgen's SSE transport flush through the wrappers of
// the response (which reach http.ResponseController by Unwrap, but which
// gqlgen asks for http.Flusher directly), and bounds each write of a
// stream: a reader that stops reading is dropped when a write waits
// longer than streamWriteTimeout, instead of holding the stream forever.
func streamWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w = &streamWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
		}
		next.ServeHTTP(w, r)
	})
}

// streamWriteTimeout bounds one write of an event stream.
const streamWriteTimeout = 30 * time.Second

type streamWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (s *streamWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return s.ResponseWriter.Write(b)
}

func (s *streamWriter) Flush() { _ = s.rc.Flush() }

func (s *streamWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}
