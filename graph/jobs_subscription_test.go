package graph_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// jobMessage is one message of a deletionJob stream over graphql-sse: the
// job's state, an error, or the complete that ends the stream.
type jobMessage struct {
	complete bool
	job      *jobResult
	code     string
}

// watchJob subscribes to deletionJob(id) on env as apiKey over graphql-sse
// and returns its messages as they come; the channel closes with the stream.
func watchJob(t *testing.T, env *testenv.Env, apiKey, id string) <-chan jobMessage {
	t.Helper()
	_, stream := env.Subscribe(apiKey, `subscription($id: ID!) { deletionJob(id: $id) { `+jobFields+` } }`, map[string]any{"id": id})
	messages := make(chan jobMessage, 4096)
	go func() {
		defer close(messages)
		for m := range stream {
			var data struct{ DeletionJob *jobResult }
			if !m.Complete && m.Data != nil {
				if err := json.Unmarshal(m.Data, &data); err != nil {
					t.Errorf("data: %v", err)
				}
			}
			jm := jobMessage{complete: m.Complete, job: data.DeletionJob}
			if len(m.Errors) > 0 {
				jm.code = m.Errors[0].Code()
			}
			messages <- jm
		}
	}()
	return messages
}

// nextJobMessage is the stream's next message, within a generous bound.
func nextJobMessage(t *testing.T, messages <-chan jobMessage) jobMessage {
	t.Helper()
	select {
	case m, ok := <-messages:
		if !ok {
			t.Fatal("the stream ended without a complete")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30s")
	}
	return jobMessage{}
}

// TestDeletionJobSubscription: deletionJob(id) pushes the caller's job as
// it runs, its deleted count never going back, then its final state, and
// completes; someone else's job is NOT_FOUND; its streams count against
// SUBSCRIPTIONS_PER_CREDENTIAL as uploadEvents' do.
func TestDeletionJobSubscription(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoJobRunner: true})
	userID, key := env.NewUser()
	_, otherKey := env.NewUser()
	const uploads = 3500
	ctx := context.Background()
	for done := 0; done < uploads; done += 1000 {
		creates := make([]*ent.UploadCreate, 0, 1000)
		for range min(1000, uploads-done) {
			creates = append(creates, env.Client().Upload.Create().SetOwnerID(userID).SetFilename("f").
				SetContentType("text/plain").SetSize(0).SetStatus(upload.StatusFAILED))
		}
		env.Client().Upload.CreateBulk(creates...).ExecX(ctx)
	}
	job := startJob(t, env, key, map[string]any{}, false)

	// Someone else's job is not found, and says nothing of it.
	theirs := watchJob(t, env, otherKey, job.ID)
	if m := nextJobMessage(t, theirs); m.code != graph.CodeNotFound || m.job != nil {
		t.Errorf("someone else's job: %+v, want NOT_FOUND", m)
	}

	watching := watchJob(t, env, key, job.ID)
	if m := nextJobMessage(t, watching); m.job == nil || m.job.Status != "QUEUED" || m.job.MatchedCount != uploads {
		t.Fatalf("first message: %+v, want the job QUEUED with %d matched", m, uploads)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go env.App.Jobs.Run(runCtx, nil)

	var states []jobResult
	for {
		m := nextJobMessage(t, watching)
		if m.complete {
			break
		}
		if m.job == nil {
			t.Fatalf("an error in the stream: %+v", m)
		}
		states = append(states, *m.job)
	}
	if len(states) == 0 {
		t.Fatal("no state after the first")
	}
	for i := 1; i < len(states); i++ {
		if states[i].DeletedCount < states[i-1].DeletedCount {
			t.Errorf("deletedCount went back: %d then %d", states[i-1].DeletedCount, states[i].DeletedCount)
		}
	}
	if last := states[len(states)-1]; last.Status != "SUCCEEDED" || last.DeletedCount != uploads || last.FinishedAt == nil {
		t.Errorf("last state: %+v, want SUCCEEDED with %d deleted", last, uploads)
	}
	t.Logf("%d states pushed for a job of %d uploads", len(states), uploads)
}

// TestDeletionJobSubscriptionLimit: a credential's deletionJob streams
// count against SUBSCRIPTIONS_PER_CREDENTIAL; the one past it is refused.
func TestDeletionJobSubscriptionLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	env := testenv.New(t, testenv.Options{NoJobRunner: true, Configure: func(cfg *config.Config) {
		cfg.SubscriptionsPerCredential = limit
	}})
	_, key := env.NewUser()
	env.MustUpload(key, "a.txt", []byte("a"))
	job := startJob(t, env, key, map[string]any{}, false) // stays QUEUED: no runner
	for i := range limit {
		if m := nextJobMessage(t, watchJob(t, env, key, job.ID)); m.job == nil {
			t.Fatalf("stream %d of %d: %+v", i+1, limit, m)
		}
	}
	if m := nextJobMessage(t, watchJob(t, env, key, job.ID)); m.code != graph.CodeTooManySubscriptions {
		t.Errorf("stream %d: %+v, want %s", limit+1, m, graph.CodeTooManySubscriptions)
	}
}
