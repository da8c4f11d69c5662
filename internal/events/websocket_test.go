package events_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// wsMessage is one graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialGraphQLWS opens a graphql-transport-ws connection to env with origin
// (none when ""), sends connection_init with payload and waits for its ack.
func dialGraphQLWS(t *testing.T, env *testenv.Env, origin string, payload map[string]any) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	header := http.Header{}
	if origin != "" {
		header.Set("Origin", origin)
	}
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(env.URL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		return nil, res, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	init, _ := json.Marshal(payload)
	if err := wsjson.Write(ctx, conn, wsMessage{Type: "connection_init", Payload: init}); err != nil {
		t.Fatal(err)
	}
	var ack wsMessage
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: got %+v, %v; want connection_ack", ack, err)
	}
	return conn, res, nil
}

// readWS returns the next message that is not a ping, pong or keep-alive.
func readWS(t *testing.T, conn *websocket.Conn) wsMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type != "ping" && m.Type != "pong" && m.Type != "ka" {
			return m
		}
	}
}

// The key in connection_init's payload (where a browser must put it) is
// the subscription's credential; the events arrive as next messages.
func TestWebSocketKeyInConnectionInit(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	_, key := env.NewUser()
	conn, _, err := dialGraphQLWS(t, env, "", map[string]any{"x-api-key": key})
	if err != nil {
		t.Fatal(err)
	}
	after := subscribeAfter(t, env)
	subscribe, _ := json.Marshal(map[string]any{"query": uploadEventsQuery, "variables": map[string]any{"after": after}})
	if err := wsjson.Write(context.Background(), conn, wsMessage{ID: "1", Type: "subscribe", Payload: subscribe}); err != nil {
		t.Fatal(err)
	}
	upload := env.MustUpload(key, "ws.txt", []byte("w"))
	m := readWS(t, conn)
	var next struct {
		Data struct{ UploadEvents event } `json:"data"`
	}
	if m.Type != "next" || m.ID != "1" || json.Unmarshal(m.Payload, &next) != nil {
		t.Fatalf("got %+v, want next of 1", m)
	}
	wantEvent(t, next.Data.UploadEvents, "CREATED", upload.ID)
}

// A page of an origin that CORS_ALLOWED_ORIGINS does not allow cannot open
// a WebSocket (which CORS does not cover); an allowed one can.
func TestWebSocketOrigins(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.CORSAllowedOrigins = "https://app.example.com" }})
	_, res, err := dialGraphQLWS(t, env, "https://evil.example.com", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a foreign origin: got %v (%v), want 403", res, err)
	}
	if _, _, err := dialGraphQLWS(t, env, "https://app.example.com", nil); err != nil {
		t.Fatalf("an allowed origin: %v", err)
	}
}

// A key that expires while its subscription is open ends it.
func TestExpiredKeyEndsSubscription(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, _ := env.NewUser()
	_, key, err := apikey.CreateWith(context.Background(), env.Client(), userID, apikey.Grant{ExpiresAt: time.Now().Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, env, key, "")
	s.wantEnd("UNAUTHENTICATED")
}
