package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestAnswerStatuses: any 2xx answer, 299 included, delivers; a 3xx, 300
// to 399, is a failed attempt whose last_error says redirects are not
// followed; other answers fail with their status.
func TestAnswerStatuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status    int
		delivered bool
		lastError string // its beginning
	}{
		{200, true, ""}, {204, true, ""}, {299, true, ""},
		{300, false, "HTTP 300 (redirects are not followed)"},
		{399, false, "HTTP 399 (redirects are not followed)"},
		{400, false, "HTTP 400"}, {503, false, "HTTP 503"},
	} {
		w := newWorld(t)
		rcv := newReceiver(t)
		owner, _, secret := w.endpoint(rcv.URL)
		rcv.trust(secret)
		status := c.status
		rcv.setAnswer(func(arrival) int { return status })
		w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
		if _, _, err := w.sender(local).RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		d := w.deliveries()[0]
		if got := d.Status == webhookdelivery.StatusDELIVERED; got != c.delivered {
			t.Errorf("answer %d: status %s, want delivered %v", c.status, d.Status, c.delivered)
		}
		redirect := c.status >= 300 && c.status <= 399
		switch {
		case c.lastError == "" && d.LastError != "":
			t.Errorf("answer %d: last_error %q, want none", c.status, d.LastError)
		case !strings.HasPrefix(d.LastError, c.lastError):
			t.Errorf("answer %d: last_error %q, want it to begin %q", c.status, d.LastError, c.lastError)
		case !redirect && strings.Contains(d.LastError, "redirect"):
			t.Errorf("answer %d: last_error %q speaks of a redirect", c.status, d.LastError)
		}
	}
}

// TestClip: last_error keeps a message of exactly its limit whole, and
// cuts a longer one to the limit, ending in an ellipsis.
func TestClip(t *testing.T) {
	t.Parallel()
	exact := strings.Repeat("é", webhook.MaxErrorLength)
	if got := webhook.Clip(exact); got != exact {
		t.Errorf("a message of exactly %d characters was changed: it ends %q", webhook.MaxErrorLength, got[len(got)-8:])
	}
	long := webhook.Clip(exact + "x")
	if n := utf8.RuneCountInString(long); n != webhook.MaxErrorLength || !strings.HasSuffix(long, "…") {
		t.Errorf("a message one character too long: %d characters, ends %q", n, long[len(long)-8:])
	}
	if got := webhook.Clip("nul\x00 and \xff"); got != "nul? and ?" {
		t.Errorf("Clip = %q", got)
	}
}

// TestBacklogDrainsWithoutWaiting: Run goes on at once after a full pass,
// so a backlog larger than Concurrency is sent without waiting
// PollInterval (an hour here) between passes.
func TestBacklogDrainsWithoutWaiting(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	owner, _, secret := w.endpoint(rcv.URL)
	rcv.trust(secret)
	const concurrency, backlog = 2, 5
	for range backlog {
		w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.sender(webhook.Options{AllowPrivateNetworks: true, Concurrency: concurrency, PollInterval: time.Hour}).Run(ctx, nil)
	}()
	defer func() { cancel(); <-done }()
	eventually(t, 5*time.Second, "the whole backlog to be delivered", func() bool { return len(rcv.got()) == backlog })
}

// TestAnswerBodyInLastError: the beginning of a failed answer's body is
// in last_error, for the endpoint's owner to see why.
func TestAnswerBodyInLastError(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = rw.Write([]byte("unknown event type"))
	}))
	defer srv.Close()
	owner, _, _ := w.endpoint(srv.URL + "/" + urlToken)
	w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	if _, _, err := w.sender(local).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.deliveries()[0].LastError; got != "HTTP 422: unknown event type" {
		t.Fatalf("last_error %q", got)
	}
}
