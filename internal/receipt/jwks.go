package receipt

import (
	"net/http"
	"strconv"
)

// JWKSPath is where the public keys are served.
const JWKSPath = "/.well-known/jwks.json"

// jwksMaxAge is how long a verifier may cache the key set. A new key signs
// only receipts issued after its rotation, and a verifier that meets an
// unknown kid fetches again, so an hour's cache costs nothing; old keys
// never leave the set.
const jwksMaxAge = 3600

// JWKSHandler serves the public keys of the receipts as a JSON Web Key
// Set, every key ever used (the signing one last), to anyone: they are
// public, and a receipt is verified by people with no credential.
func (k *Keys) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = k.Refresh() // a rotation shows at once; on an error the keys read before are served
		doc := k.JWKS()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(doc)
	})
}
