package purge

import (
	"context"
	"sync"
)

// sharedRemovals sends the inline removals of single objects that arrive
// together in one S3 request. A group commit (database.Group) answers
// several deletes at once, and each then removes its object right away:
// sent one by one, their DeleteObject requests reached S3 in a burst and
// queued there, each paying for a whole request (its signature, its HTTP
// exchange, S3's own handling of it), and the last of a burst waited for
// all the others (issue 22: 4 ms a delete, against the embedded S3 and
// versitygw, where a hand-written handler's, arriving one at a time, took
// 1–2 ms).
//
// A removal that finds no request under way is sent at once, alone, by its
// caller (Discard, exactly as before). Those that arrive while a request is
// under way wait for it to end, then go together in the next one
// (DeleteKeys: one DeleteObjects request for up to a thousand keys, every
// version of each on a versioned bucket, as Discard removes them). Each
// caller hears how its own key fared. Nothing is retried here:
// a removal that fails leaves its purge to the background loop, as before.
type sharedRemovals struct {
	objects ObjectDiscarder

	mu      sync.Mutex
	pending []*removal
	sending bool // a request is under way, or about to be
}

// removal is one caller's object, waiting to be sent.
type removal struct {
	ctx         context.Context
	bucket, key string
	done        chan struct{} // closed once err is set
	err         error
}

// maxShared bounds the removals sent together (DeleteKeys splits them into
// DeleteObjects requests of its own size).
const maxShared = 1000

// discard removes the object at key (no multipart upload to abort), in a
// request shared with the removals that arrive meanwhile, and returns how
// its own key fared.
func (s *sharedRemovals) discard(ctx context.Context, bucket, key string) error {
	s.mu.Lock()
	if !s.sending {
		s.sending = true
		s.mu.Unlock()
		defer s.handOver()
		return s.objects.Discard(ctx, bucket, key, "")
	}
	r := &removal{ctx: ctx, bucket: bucket, key: key, done: make(chan struct{})}
	s.pending = append(s.pending, r)
	s.mu.Unlock()
	// No longer than the caller's own inline timeout: the request under way
	// is bounded by the same timeout, begun earlier, and so is the next.
	<-r.done
	return r.err
}

// handOver ends a request: the removals that arrived meanwhile are sent by
// a goroutine of their own, so that the caller who sent it goes on with
// its answer.
func (s *sharedRemovals) handOver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		s.sending = false
		return
	}
	go s.sendPending()
}

// sendPending sends what waits, a request at a time, until nothing does.
func (s *sharedRemovals) sendPending() {
	for {
		s.mu.Lock()
		batch := s.pending[:min(len(s.pending), maxShared)]
		s.pending = s.pending[len(batch):]
		if len(batch) == 0 {
			s.pending = nil
			s.sending = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.send(batch)
	}
}

// send removes the batch's objects and tells each caller. The request runs
// under the context of the removal that has waited longest, whose deadline
// (the inline timeout) comes first, and in its trace; one whose deadline
// has passed already is not sent.
func (s *sharedRemovals) send(batch []*removal) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	var live []*removal
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err == nil {
			live = append(live, r)
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.err = s.objects.Discard(r.ctx, r.bucket, r.key, "")
		return
	}
	byBucket := map[string][]*removal{}
	var buckets []string
	for _, r := range live {
		if _, ok := byBucket[r.bucket]; !ok {
			buckets = append(buckets, r.bucket)
		}
		byBucket[r.bucket] = append(byBucket[r.bucket], r)
	}
	for _, bucket := range buckets {
		removals := byBucket[bucket]
		keys := make([]string, 0, len(removals))
		seen := make(map[string]bool, len(removals))
		for _, r := range removals {
			if !seen[r.key] { // a purge attempted twice at once: its key once
				seen[r.key] = true
				keys = append(keys, r.key)
			}
		}
		failed := s.objects.DeleteKeys(removals[0].ctx, bucket, keys)
		for _, r := range removals {
			r.err = failed[r.key]
		}
	}
}
