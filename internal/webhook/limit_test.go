package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestEndpointLimitUnderConcurrency: however many registrations of one
// owner race, MaxEndpointsPerOwner endpoints are made and every other call
// is refused with ErrTooManyEndpoints.
func TestEndpointLimitUnderConcurrency(t *testing.T) {
	// Serial, rows too: on PostgreSQL its racing callers each hold a connection, most of the server's max_connections.
	for _, calls := range []int{30, 100} {
		t.Run(fmt.Sprint(calls), func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			owner := ids.NewUser()
			errs := make([]error, calls)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() {
					<-start
					_, _, errs[i] = webhook.CreateEndpoint(ctx, w.client, w.sealer, owner,
						fmt.Sprintf("https://hooks.example.com/%d", i), nil, false)
				})
			}
			close(start)
			wg.Wait()
			var made, refused int
			for _, err := range errs {
				switch {
				case err == nil:
					made++
				case errors.Is(err, webhook.ErrTooManyEndpoints):
					refused++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			stored, err := w.client.WebhookEndpoint.Query().Where(webhookendpoint.OwnerID(owner)).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if made != webhook.MaxEndpointsPerOwner || refused != calls-made || stored != webhook.MaxEndpointsPerOwner {
				t.Fatalf("%d concurrent registrations: %d made, %d refused, %d stored; want %d made and stored, the rest refused",
					calls, made, refused, stored, webhook.MaxEndpointsPerOwner)
			}
		})
	}
}
