package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	entapikey "github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// wsQuery runs query as operation id over conn and returns its first
// message's data and the code of its first error.
func wsQuery(t *testing.T, conn *websocket.Conn, id, query string) (json.RawMessage, string) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query})
	if err := wsjson.Write(context.Background(), conn, wsMessage{ID: id, Type: "subscribe", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	m := readWS(t, conn)
	if m.Type == "next" { // then its complete
		if c := readWS(t, conn); c.Type != "complete" || c.ID != id {
			t.Fatalf("%s: got %+v after next, want complete", id, c)
		}
	}
	var result struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if m.Type == "error" {
		_ = json.Unmarshal(m.Payload, &result.Errors)
	} else if err := json.Unmarshal(m.Payload, &result); err != nil {
		t.Fatalf("%s: %+v: %v", id, m, err)
	}
	code := ""
	if len(result.Errors) > 0 {
		code, _ = result.Errors[0].Extensions["code"].(string)
	}
	return result.Data, code
}

// A key revoked while its WebSocket is open no longer works on it: not
// for queries, not for mutations, not for a new subscription. (The
// connection's viewer was taken once, at connection_init.)
func TestRevokedKeyRefusedOnOpenWebSocket(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{})
	userID, key := env.NewUser()
	conn, _, err := dialGraphQLWS(t, env, "", map[string]any{"x-api-key": key})
	if err != nil {
		t.Fatal(err)
	}
	if data, code := wsQuery(t, conn, "1", `{ viewer { id } }`); code != "" || string(data) == `{"viewer":null}` {
		t.Fatalf("before revoking: got %s, %q; want the viewer", data, code)
	}
	ctx := context.Background()
	keyID := env.Client().APIKey.Query().Where(entapikey.OwnerID(userID)).OnlyIDX(ctx)
	if _, err := apikey.Revoke(ctx, env.Client(), keyID); err != nil {
		t.Fatal(err)
	}
	if data, code := wsQuery(t, conn, "2", `{ viewer { id } }`); code != "UNAUTHENTICATED" && string(data) != `{"viewer":null}` {
		t.Fatalf("after revoking: got %s, %q; want no viewer", data, code)
	}
}

// Operations over one WebSocket count against RATE_LIMIT as requests do:
// a socket is not a way around the limit.
func TestWebSocketOperationsAreRateLimited(t *testing.T) {
	t.Parallel()
	const limit = 3
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.RateLimit, c.RateLimitWindow = limit, time.Minute }})
	_, key := env.NewUser()
	conn, _, err := dialGraphQLWS(t, env, "", map[string]any{"x-api-key": key})
	if err != nil {
		t.Fatal(err)
	}
	for i := range limit + 2 {
		_, code := wsQuery(t, conn, string(rune('a'+i)), `{ viewer { id } }`)
		if code == "RATE_LIMITED" {
			return
		}
	}
	t.Fatalf("%d operations over one WebSocket, none refused; RATE_LIMIT is %d", limit+2, limit)
}
