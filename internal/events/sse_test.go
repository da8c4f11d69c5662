package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/testenv"
)

// event is one message of an uploadEvents stream.
type event struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	UploadID  string    `json:"uploadId"`
	CreatedAt time.Time `json:"createdAt"`
}

// message is one SSE event of a stream: a next (an event, or errors) or
// the complete that ends it.
type message struct {
	at       time.Time // when it arrived
	complete bool
	event    event
	errors   []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

func (m message) code() string {
	if len(m.errors) == 0 {
		return ""
	}
	code, _ := m.errors[0].Extensions["code"].(string)
	return code
}

// stream is an uploadEvents subscription over graphql-sse, as a browser's
// EventSource-like client holds it.
type stream struct {
	t        *testing.T
	cancel   context.CancelFunc
	messages chan message
	status   int
}

const uploadEventsQuery = `subscription($after: ID) { uploadEvents(after: $after) { id kind uploadId createdAt } }`

// subscribe opens uploadEvents on env as apiKey, after the event id after,
// or after the trail's last event when after is "": the server answers the
// request before its resolver subscribes, and a subscription without after
// starts wherever the trail ends then, so a test's next change could fall
// before it.
func subscribe(t *testing.T, env *testenv.Env, apiKey, after string) *stream {
	t.Helper()
	if after == "" {
		after = subscribeAfter(t, env)
	}
	variables := map[string]any{"after": after}
	body, _ := json.Marshal(map[string]any{"query": uploadEventsQuery, "variables": variables})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Api-Key", apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	s := &stream{t: t, cancel: cancel, messages: make(chan message, 1024), status: res.StatusCode}
	t.Cleanup(s.close)
	go s.read(env, res)
	return s
}

// subscribeAfter is the id of the trail's last event.
func subscribeAfter(t *testing.T, env *testenv.Env) string {
	t.Helper()
	last, err := env.Client().AuditEvent.Query().Order(ent.Desc(auditevent.FieldID)).FirstID(context.Background())
	if err != nil && !ent.IsNotFound(err) {
		t.Fatal(err)
	}
	return strconv.Itoa(last)
}

func (s *stream) read(env *testenv.Env, res *http.Response) {
	defer close(s.messages)
	for m := range env.ReadSSE(res) {
		var data struct {
			UploadEvents event `json:"uploadEvents"`
		}
		if !m.Complete && m.Data != nil {
			if err := json.Unmarshal(m.Data, &data); err != nil {
				s.t.Errorf("data: %v", err)
				return
			}
		}
		msg := message{at: m.At, complete: m.Complete, event: data.UploadEvents}
		for _, e := range m.Errors {
			msg.errors = append(msg.errors, struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			}{e.Message, e.Extensions})
		}
		s.messages <- msg
	}
}

// next returns the stream's next message; it fails the test if none comes
// within a generous bound (the events come within milliseconds).
func (s *stream) next() message {
	s.t.Helper()
	select {
	case m, ok := <-s.messages:
		if !ok {
			s.t.Fatal("the stream ended without a complete")
		}
		return m
	case <-time.After(20 * time.Second):
		s.t.Fatal("no message within 20s")
	}
	return message{}
}

// nextEvent returns the next message, which must be an event.
func (s *stream) nextEvent() event {
	s.t.Helper()
	m := s.next()
	if m.complete || len(m.errors) > 0 {
		s.t.Fatalf("want an event, got complete=%v errors=%+v", m.complete, m.errors)
	}
	return m.event
}

// wantEnd checks that the stream's next message is an error of code, and
// that the stream then completes.
func (s *stream) wantEnd(code string) {
	s.t.Helper()
	if m := s.next(); m.code() != code {
		s.t.Fatalf("got %+v, want an error %s", m, code)
	}
	if !s.next().complete {
		s.t.Fatal("the stream did not complete after its error")
	}
}

func (s *stream) close() { s.cancel() }
