package purge

import (
	"context"
	"fmt"
	"sync"
	"time"
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
// under way wait for it to end, then go together in the next one: one
// DeleteKeys a bucket (DeleteObjects requests of up to 250 keys; a single
// key as a DeleteObject). Only removals that take one request each are
// shared (Purger.attempt): on a versioned bucket, where each lists its
// key's versions first, they go alone, side by side, as before. Each
// caller hears how its own key fared, and stops waiting at its own
// deadline. Nothing is retried here: a removal that fails leaves its purge
// to the background loop, as before.
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

// discard removes the object at key (no multipart upload to abort, no
// versions to list), in a request shared with the removals that arrive
// meanwhile, and returns how its own key fared. It waits no longer than
// ctx allows: a caller that stops waiting is told ctx's error, and its key
// may still be removed (its purge, retried, then finds it gone).
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
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
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

// send removes the batch's objects, a bucket at a time, and tells each
// caller as soon as its bucket's request is over. A removal whose caller's
// deadline has passed is not sent. Each request runs in the trace of the
// removal that has waited longest, until the latest deadline of those it
// carries (each caller still stops waiting at its own).
func (s *sharedRemovals) send(batch []*removal) {
	byBucket := map[string][]*removal{}
	var buckets []string
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err != nil {
			close(r.done)
			continue
		}
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
		ctx, cancel := latestDeadline(removals)
		failed := s.remove(ctx, bucket, keys)
		cancel()
		for _, r := range removals {
			r.err = failed[r.key]
			close(r.done)
		}
	}
}

// remove removes the keys of bucket, one alone as Discard does, and
// returns those that failed. A panic fails them all rather than the
// process: it happens on a goroutine no request recovers.
func (s *sharedRemovals) remove(ctx context.Context, bucket string, keys []string) (failed map[string]error) {
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("remove %d objects: panic: %v", len(keys), v)
			failed = make(map[string]error, len(keys))
			for _, key := range keys {
				failed[key] = err
			}
		}
	}()
	if len(keys) == 1 {
		if err := s.objects.Discard(ctx, bucket, keys[0], ""); err != nil {
			return map[string]error{keys[0]: err}
		}
		return nil
	}
	return s.objects.DeleteKeys(ctx, bucket, keys)
}

// latestDeadline is the context of the removal that has waited longest,
// its values (the trace) kept, its deadline the latest of the removals'.
func latestDeadline(removals []*removal) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(removals[0].ctx)
	var latest time.Time
	for _, r := range removals {
		d, ok := r.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}
