package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// BenchmarkSenderDrain measures how fast one sender drains a backlog to a
// fast local receiver (204 at once, nothing verified): b.N deliveries
// spread over users with one endpoint each, two events per upload (deleted
// then purged, the second waiting for the first), as deletes enqueue them.
// It reports deliveries/s; the bench's -instances mode compares it with the
// delete rate in one run. claim=apart is the baseline: workers claim their
// next delivery apart from their outcome's commit, as before issue 26;
// claim=with-outcome is what Run does. With -count the two alternate.
//
//	go test -run '^$' -bench SenderDrain -benchtime 4000x -count 3 ./internal/webhook
func BenchmarkSenderDrain(b *testing.B) {
	for _, users := range []int{1, 16} {
		for _, apart := range []bool{true, false} {
			b.Run(fmt.Sprintf("users=%d/claim=%s", users, map[bool]string{true: "apart", false: "with-outcome"}[apart]), func(b *testing.B) {
				benchDrain(b, users, apart)
			})
		}
	}
}

func benchDrain(b *testing.B, users int, apart bool) {
	w := newWorld(b)
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		rw.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	owners := make([]string, users)
	for i := range owners {
		owners[i], _, _ = w.endpoint(srv.URL, webhook.EventUploadDeleted, webhook.EventUploadPurged)
	}
	var events []webhook.Event
	for i := range (b.N + 1) / 2 {
		owner, upload := owners[i%users], ids.NewUpload()
		events = append(events, event(webhook.EventUploadDeleted, owner, upload), event(webhook.EventUploadPurged, owner, upload))
	}
	for len(events) > 0 {
		n := min(len(events), 500)
		w.enqueue(events[:n]...)
		events = events[n:]
	}
	total, err := w.client.WebhookDelivery.Query().Count(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	sender := w.sender(webhook.Options{AllowPrivateNetworks: true, PollInterval: 50 * time.Millisecond})
	if apart {
		sender.ClaimApart()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { defer close(done); sender.Run(ctx, nil) }()
	for {
		left, err := w.client.WebhookDelivery.Query().Where(webhookdelivery.StatusEQ(webhookdelivery.StatusPENDING)).Count(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if left == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
}
