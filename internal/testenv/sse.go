package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// SSEMessage is one message of a subscription over graphql-sse: a next
// (its data, or errors) or the complete that ends the stream.
type SSEMessage struct {
	At       time.Time // when it arrived
	Complete bool
	GraphQLResponse
}

// ReadSSE reads the graphql-sse messages of res's body into a channel,
// closed when the stream ends; a message that is not JSON fails the test.
func (e *Env) ReadSSE(res *http.Response) <-chan SSEMessage {
	messages := make(chan SSEMessage, 4096)
	go func() {
		defer close(messages)
		defer res.Body.Close()
		scanner := bufio.NewScanner(res.Body)
		var name string
		for scanner.Scan() {
			line := scanner.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				if name = strings.TrimPrefix(line, "event: "); name == "complete" {
					messages <- SSEMessage{At: time.Now(), Complete: true}
				}
			case strings.HasPrefix(line, "data: ") && name == "next":
				m := SSEMessage{At: time.Now()}
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m.GraphQLResponse); err != nil {
					e.t.Errorf("a message that is not JSON: %s", line)
					return
				}
				messages <- m
			}
		}
	}()
	return messages
}

// Subscribe opens a subscription of query with variables on the service
// over graphql-sse as apiKey, closed when the test ends, and returns the
// response (its status) and its messages.
func (e *Env) Subscribe(apiKey, query string, variables map[string]any) (*http.Response, <-chan SSEMessage) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Api-Key", apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("subscribe: %v", err)
	}
	return res, e.ReadSSE(res)
}
