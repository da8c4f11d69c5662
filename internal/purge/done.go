package purge

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
)

// doneRows deletes the rows of finished purges in the background, many in
// one statement: while one DELETE commits, the rows finished meanwhile queue
// up for the next. The object is already gone when a row is queued, so
// nobody waits for the row: a delete's caller gets its answer after one
// commit (its record's), not two, and under load the database commits once
// per group of finished purges. A row whose DELETE never happens (a crash,
// a database error) only means its idempotent purge runs again, when due.
type doneRows struct {
	client *ent.Client
	logger *slog.Logger
	mu     sync.Mutex
	idle   *sync.Cond // signalled when the queue is empty and no flush runs
	busy   bool
	ids    []int
}

func newDoneRows(client *ent.Client, logger *slog.Logger) *doneRows {
	d := &doneRows{client: client, logger: logger}
	d.idle = sync.NewCond(&d.mu)
	return d
}

// add queues the row of a finished purge for deletion.
func (d *doneRows) add(id int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = append(d.ids, id)
	if !d.busy {
		d.busy = true
		go d.flush()
	}
}

func (d *doneRows) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.ids) > 0 {
		ids := d.ids[:min(len(d.ids), batchSize)]
		d.ids = d.ids[len(ids):]
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := d.client.ObjectPurge.Delete().Where(objectpurge.IDIn(ids...)).Exec(ctx); err != nil {
			d.logger.WarnContext(ctx, "finish purges; they will run again", "purges", len(ids), "error", err)
		}
		cancel()
		d.mu.Lock()
	}
	d.busy = false
	d.idle.Broadcast()
}

// wait returns once every queued row is deleted (or failed to be).
func (d *doneRows) wait() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.busy {
		d.idle.Wait()
	}
}
