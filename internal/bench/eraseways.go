package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"slices"
	"sync"

	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/jobs"
)

// deleteUploadsPages sends the seeded ids in pages of graph.MaxDeleteIDs,
// as a client that knows them would, one call after another.
func (e *eraseRun) deleteUploadsPages(ctx context.Context) (calls int, err error) {
	return e.pages(ctx, 1)
}

// deleteUploadsPagesTwo sends the same pages two calls at a time, as a
// client that overlaps one page's wait for S3 with the next page's
// transaction would.
func (e *eraseRun) deleteUploadsPagesTwo(ctx context.Context) (calls int, err error) {
	return e.pages(ctx, 2)
}

// pages sends the seeded ids in pages of graph.MaxDeleteIDs, sideBySide
// calls at a time, and stops at the first error.
func (e *eraseRun) pages(ctx context.Context, sideBySide int) (calls int, err error) {
	const mutation = `mutation($ids: [ID!]!) { deleteUploads(ids: $ids) { deletedUploadIds notFoundIds } }`
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []seededUpload)
	go func() {
		defer close(pages)
		for page := range slices.Chunk(e.uploads, graph.MaxDeleteIDs) {
			select {
			case pages <- page:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var callers sync.WaitGroup
	for range sideBySide {
		callers.Go(func() {
			for page := range pages {
				uploadIDs := make([]string, len(page))
				for i, u := range page {
					uploadIDs[i] = u.id
				}
				var data struct {
					DeleteUploads struct{ DeletedUploadIDs, NotFoundIDs []string }
				}
				callErr := e.graphql(ctx, mutation, map[string]any{"ids": uploadIDs}, &data)
				if got := data.DeleteUploads; callErr == nil && (len(got.DeletedUploadIDs) != len(uploadIDs) || len(got.NotFoundIDs) > 0) {
					callErr = fmt.Errorf("deleteUploads of %d ids: %d deleted, %d not found",
						len(uploadIDs), len(got.DeletedUploadIDs), len(got.NotFoundIDs))
				}
				mu.Lock()
				if callErr == nil {
					calls++
				} else if err == nil {
					err = callErr
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	callers.Wait()
	if pageCount := (len(e.uploads) + graph.MaxDeleteIDs - 1) / graph.MaxDeleteIDs; err == nil && calls != pageCount {
		err = fmt.Errorf("deleteUploads answered %d of %d pages", calls, pageCount)
	}
	return calls, err
}

// deleteUploadsWhere calls deleteUploadsWhere(where: {}) until hasMore is
// false.
func (e *eraseRun) deleteUploadsWhere(ctx context.Context) (calls int, err error) {
	const mutation = `mutation { deleteUploadsWhere(where: {}) { deletedCount matchedCount hasMore } }`
	deleted := 0
	for {
		var data struct {
			DeleteUploadsWhere struct {
				DeletedCount, MatchedCount int
				HasMore                    bool
			}
		}
		if err := e.graphql(ctx, mutation, nil, &data); err != nil {
			return calls, err
		}
		calls++
		deleted += data.DeleteUploadsWhere.DeletedCount
		if !data.DeleteUploadsWhere.HasMore {
			break
		}
		if calls > len(e.uploads)/graph.MaxDeleteWhere+10 {
			return calls, fmt.Errorf("hasMore still true after %d calls (%d deleted)", calls, deleted)
		}
	}
	if deleted != len(e.uploads) {
		return calls, fmt.Errorf("deleteUploadsWhere deleted %d of %d", deleted, len(e.uploads))
	}
	return calls, nil
}

// eraseUser erases the user as `users delete --id` does, on the way's app.
func (e *eraseRun) eraseUser(ctx context.Context) (calls int, err error) {
	var erased admin.Erasure
	pprof.Do(ctx, pprof.Labels("side", "service", "scenario", e.name, "run", "service/"+e.name), func(ctx context.Context) {
		erased, err = admin.EraseUser(ctx, e.app.Client, e.app.Resolver, e.owner.id)
	})
	if err != nil {
		return 1, err
	}
	if erased.UploadsDeleted != len(e.uploads) {
		return 1, fmt.Errorf("EraseUser deleted %d of %d uploads", erased.UploadsDeleted, len(e.uploads))
	}
	return 1, nil
}

// deletionJob starts a job over every upload of the user through GraphQL
// and runs it to its end on the way's app.
func (e *eraseRun) deletionJob(ctx context.Context) (calls int, err error) {
	var data struct{ StartDeletionJob struct{ ID string } }
	if err := e.graphql(ctx, `mutation { startDeletionJob(where: {}) { id } }`, nil, &data); err != nil {
		return 1, err
	}
	return 1, e.runJob(ctx, data.StartDeletionJob.ID)
}

// eraseJob erases the user as a USER_ERASE job run on the way's app.
func (e *eraseRun) eraseJob(ctx context.Context) (calls int, err error) {
	job, err := e.app.Jobs.StartUserErase(ctx, e.owner.id)
	if err != nil {
		return 1, err
	}
	return 1, e.runJob(ctx, job.ID)
}

// runJob runs the job to its end here and checks that it deleted every
// seeded upload.
func (e *eraseRun) runJob(ctx context.Context, jobID string) error {
	var err error
	pprof.Do(ctx, pprof.Labels("side", "service", "scenario", e.name, "run", "service/"+e.name), func(ctx context.Context) {
		_, err = e.app.Jobs.RunJob(ctx, jobID)
	})
	if err != nil {
		return err
	}
	job, err := e.app.Jobs.Get(ctx, jobID, jobs.AnyOwner)
	if err != nil {
		return err
	}
	if job.Status != deletionjob.StatusSUCCEEDED || job.DeletedCount != len(e.uploads) {
		return fmt.Errorf("deletion job: %s, %d of %d deleted (%s)", job.Status, job.DeletedCount, len(e.uploads), job.Error)
	}
	return nil
}

// graphql sends one operation with the user's key and decodes its data
// into data; any error in the answer is an error.
func (e *eraseRun) graphql(ctx context.Context, query string, variables map[string]any, data any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.svc.baseURL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("x-api-key", e.owner.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.svc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var answer struct {
		Data   json.RawMessage
		Errors []json.RawMessage
	}
	if err := json.Unmarshal(b, &answer); err != nil || resp.StatusCode != http.StatusOK || len(answer.Errors) > 0 {
		return fmt.Errorf("POST /graphql: %d %.300s", resp.StatusCode, b)
	}
	return json.Unmarshal(answer.Data, data)
}
