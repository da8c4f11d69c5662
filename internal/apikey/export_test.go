package apikey

import "time"

// WriteUsesEvery sets how long a noted use waits to be written.
func (a *Authenticator) WriteUsesEvery(d time.Duration) { a.uses.writeEvery = d }
