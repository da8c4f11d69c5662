package database

import (
	"runtime"
	"sync"
	"weak"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
)

// NewClient returns an Ent client of drv whose dialect Dialect reports.
// Open makes its clients with it.
func NewClient(drv dialect.Driver) *ent.Client {
	client := ent.NewClient(ent.Driver(drv))
	key := weak.Make(client)
	dialectsMu.Lock()
	dialects[key] = drv.Dialect()
	dialectsMu.Unlock()
	runtime.AddCleanup(client, func(key weak.Pointer[ent.Client]) {
		dialectsMu.Lock()
		delete(dialects, key)
		dialectsMu.Unlock()
	}, key)
	return client
}

// Dialect returns the SQL dialect (dialect.SQLite or dialect.Postgres) of
// a client that Open or NewClient returned, and "" for any other. Ent keeps
// its driver to itself, and code handed only the client may need to know
// which SQL to write (the queue's claims lock rows on PostgreSQL only).
func Dialect(client *ent.Client) string {
	dialectsMu.Lock()
	defer dialectsMu.Unlock()
	return dialects[weak.Make(client)]
}

// dialects holds the clients weakly: a client dropped is forgotten.
var (
	dialectsMu sync.Mutex
	dialects   = map[weak.Pointer[ent.Client]]string{}
)
