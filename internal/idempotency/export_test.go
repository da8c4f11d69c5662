package idempotency

import "github.com/safedelete/uploads/ent"

// Abandon stops the claim's renewals without ending it, as a killed
// process does.
func (c *Claim) Abandon() { c.end() }

// Client is the store's database.
func (s *Store) Client() *ent.Client { return s.client }
