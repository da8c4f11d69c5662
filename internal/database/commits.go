package database

import (
	"sync"

	"github.com/safedelete/uploads/ent"
)

// commitWakeups are the channels that hear of this process's commits.
type commitWakeups struct {
	mu    sync.Mutex
	chans []chan struct{}
}

// wake tells every channel, without ever blocking a commit: wake-ups
// while a reader is busy coalesce into one.
func (c *commitWakeups) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Commits returns a channel that receives after a transaction of client
// commits, on SQLite, which one process writes: a reader of what
// transactions write (the audit trail's subscriptions) hears of it at
// once instead of at its next poll. On PostgreSQL, and for a client not
// opened by Open, it returns nil (a channel that never receives): other
// instances write too, and NOTIFY tells of their commits.
func Commits(client *ent.Client) <-chan struct{} {
	d, ok := client.Driver().(*driver)
	if !ok || d.writers == nil {
		return nil
	}
	ch := make(chan struct{}, 1)
	d.commits.mu.Lock()
	d.commits.chans = append(d.commits.chans, ch)
	d.commits.mu.Unlock()
	return ch
}
