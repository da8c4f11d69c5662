package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safedelete/uploads/internal/idempotency"
)

// restPath is the contract's endpoint.
const restPath = "/delete-upload-api"

// call is one request and the check of its answer.
type call struct {
	req   *http.Request
	check func(status int, body []byte) error
}

// side is one server under load and what it was seeded with.
type side struct {
	name    string
	baseURL string
	db      *sql.DB // a connection of our own to its database, to seed and inspect
	client  *http.Client
	users   []user
	foreign []seededUpload            // another user's uploads: the 404 path's targets
	missing []string                  // well-formed ids of no upload
	pools   map[string][]seededUpload // per pool (scenario and kind), consumed in order
	used    map[string]int            // per pool
	settle  func()                    // waits for work left after the answers (the purger's row clean-up), if any
}

// kind is what a scenario sends one side.
type kind int

const (
	restDelete kind = iota
	rest404
	graphqlDelete
	graphqlDeleteVars
	restDeleteRS256 // the REST delete with Authorization: Bearer <RS256 access token>
	restDeleteES256 // the same, ES256
	restDeleteKeyed // the REST delete with an Idempotency-Key never sent before
)

// consumes reports whether each request deletes one seeded upload.
func (k kind) consumes() bool { return k != rest404 }

// tokenAlg is the algorithm of the access token k authenticates with, or
// "" for an API key.
func (k kind) tokenAlg() string {
	switch k {
	case restDeleteRS256:
		return "RS256"
	case restDeleteES256:
		return "ES256"
	}
	return ""
}

// pool names the uploads that scenario's requests of kind k delete: a
// scenario that sends one side two kinds (a token and a key) has two.
func pool(scenario string, k kind) string { return fmt.Sprintf("%s/%d", scenario, k) }

// next returns the request for the i-th call of scenario on s.
func (s *side) next(scenario string, k kind, i int) call {
	switch k {
	case rest404:
		// Half ids of nothing, half another user's uploads: both 404.
		id := s.missing[i%len(s.missing)]
		if i%2 == 1 {
			id = s.foreign[i%len(s.foreign)].id
		}
		return s.restCall("X-Api-Key", s.users[i%len(s.users)].key, id, http.StatusNotFound, `{"error":"Upload not found"}`)
	}
	u := s.pools[pool(scenario, k)][s.used[pool(scenario, k)]+i]
	switch k {
	case graphqlDelete:
		return s.graphqlCall(u, `{"query":"mutation { deleteUpload(id: \"`+u.id+`\") { deletedUploadId message } }"}`)
	case graphqlDeleteVars:
		return s.graphqlCall(u, `{"query":"mutation Delete($id: ID!) { deleteUpload(id: $id) { deletedUploadId message } }","variables":{"id":"`+u.id+`"}}`)
	case restDeleteRS256, restDeleteES256:
		token := u.token
		if token == "" {
			token = u.owner.tokens[k.tokenAlg()]
		}
		return s.restCall("Authorization", "Bearer "+token, u.id, http.StatusOK, `{"message":"Upload `+u.id+` deleted successfully"}`)
	case restDeleteKeyed:
		c := s.restCall("X-Api-Key", u.owner.key, u.id, http.StatusOK, `{"message":"Upload `+u.id+` deleted successfully"}`)
		c.req.Header.Set(idempotency.Header, "bench-"+u.id) // one upload, one delete: a key of its own
		return c
	default:
		return s.restCall("X-Api-Key", u.owner.key, u.id, http.StatusOK, `{"message":"Upload `+u.id+` deleted successfully"}`)
	}
}

// restCall is a REST delete of uploadID with the credential in header.
func (s *side) restCall(header, credential, uploadID string, status int, body string) call {
	req, _ := http.NewRequest(http.MethodDelete, s.baseURL+restPath, nil)
	req.Header.Set(header, credential)
	req.Header.Set("x-upload-id", uploadID)
	return call{req: req, check: func(got int, b []byte) error {
		if got != status || string(b) != body {
			return fmt.Errorf("%s %s: got %d %s, want %d %s", req.Method, restPath, got, b, status, body)
		}
		return nil
	}}
}

func (s *side) graphqlCall(u seededUpload, body string) call {
	req, _ := http.NewRequest(http.MethodPost, s.baseURL+"/graphql", strings.NewReader(body))
	req.Header.Set("x-api-key", u.owner.key)
	req.Header.Set("Content-Type", "application/json")
	return call{req: req, check: func(got int, b []byte) error {
		var resp struct {
			Data struct {
				DeleteUpload struct{ DeletedUploadID, Message string }
			}
			Errors []any
		}
		want := "Upload " + u.id + " deleted successfully"
		if err := json.Unmarshal(b, &resp); got != http.StatusOK || err != nil || len(resp.Errors) > 0 ||
			resp.Data.DeleteUpload.DeletedUploadID != u.id || resp.Data.DeleteUpload.Message != want {
			return fmt.Errorf("POST /graphql: got %d %s", got, b)
		}
		return nil
	}}
}

// result is the outcome of driving one side for a while.
type result struct {
	requests int
	elapsed  time.Duration
	latency  []time.Duration
	errors   int
	firstErr error
}

// drive sends n calls of scenario to s from c concurrent callers.
func drive(ctx context.Context, s *side, scenario string, k kind, n, c int) result {
	calls := make([]call, n)
	for i := range calls {
		calls[i] = s.next(scenario, k, i)
	}
	if k.consumes() {
		s.used[pool(scenario, k)] += n
	}
	return driveCalls(ctx, s.client, calls, c)
}

// driveCalls sends calls from c concurrent callers.
func driveCalls(ctx context.Context, client *http.Client, calls []call, c int) result {
	n := len(calls)
	r := result{requests: n, latency: make([]time.Duration, n)}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	began := time.Now()
	for range c {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				t := time.Now()
				err := do(ctx, client, calls[i])
				r.latency[i] = time.Since(t)
				if err != nil {
					mu.Lock()
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(began)
	return r
}

func do(ctx context.Context, client *http.Client, c call) error {
	resp, err := client.Do(c.req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return c.check(resp.StatusCode, b)
}

// merge adds another run of the same side.
func (r *result) merge(o result) {
	r.requests += o.requests
	r.elapsed += o.elapsed
	r.latency = append(r.latency, o.latency...)
	r.errors += o.errors
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// stats are a side's figures over all its rounds.
type stats struct {
	rps      float64
	p50, p99 time.Duration
}

func (r result) stats() stats {
	return stats{rps: float64(r.requests) / r.elapsed.Seconds(), p50: percentile(r.latency, 50), p99: percentile(r.latency, 99)}
}

// newClient is the load generator's HTTP client for one side: keep-alive
// connections, one per caller.
func newClient(c int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        c,
		MaxIdleConnsPerHost: c,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}}
}

// percentile is the p-th percentile of d (a sorted copy's).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)*p+99)/100-1]
}
