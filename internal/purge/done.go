package purge

import (
	"context"
	"sync"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/objectpurge"
)

// doneRows deletes the rows of finished purges, many in one statement:
// while one DELETE commits, the rows finished meanwhile queue up for the
// next. Under load the database then commits once per group rather than
// once per purge; alone, a row is deleted at once. Each caller still waits
// for its own row's delete.
type doneRows struct {
	client  *ent.Client
	mu      sync.Mutex
	busy    bool
	ids     []int
	waiters []chan error
}

func (d *doneRows) delete(ctx context.Context, id int) error {
	result := make(chan error, 1)
	d.mu.Lock()
	d.ids, d.waiters = append(d.ids, id), append(d.waiters, result)
	if d.busy { // the running group's leader takes this row next
		d.mu.Unlock()
		return <-result
	}
	d.busy = true
	for len(d.ids) > 0 {
		ids, waiters := d.ids, d.waiters
		d.ids, d.waiters = nil, nil
		d.mu.Unlock()
		_, err := d.client.ObjectPurge.Delete().Where(objectpurge.IDIn(ids...)).Exec(ctx)
		for _, w := range waiters {
			w <- err
		}
		d.mu.Lock()
	}
	d.busy = false
	d.mu.Unlock()
	return <-result
}
