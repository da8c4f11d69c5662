// Package receipt issues signed proof that an upload is gone for good: a
// deletion receipt, a JWS (compact serialisation, EdDSA over Ed25519) that
// anyone holding the service's public keys (/.well-known/jwks.json) can
// check offline. All JOSE work is go-jose's; this package only chooses the
// claims, keeps the keys and stores the receipts.
package receipt

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/safedelete/uploads/internal/keyfile"
)

// Type is the JWS "typ" header of every receipt: a verifier that checks it
// cannot be handed some other JWT signed with the same keys as a receipt.
const Type = "deletion-receipt+jwt"

// JobType is the "typ" header of a deletion job's receipt (JobClaims), so
// that neither kind of receipt passes for the other.
const JobType = "deletion-job-receipt+jwt"

// Keys are the signing keys in the key file: the newest signs, every one
// (the older ones after a rotation) is published, so that the receipts
// they signed still verify. The file is a JSON Web Key Set of private
// keys, oldest first; a key's kid is its RFC 7638 thumbprint.
//
// The file is read again when it changes, so that a rotation
// (`uploads receipts rotate-key`) reaches a running server without a
// restart: at its next batch of receipts and its next JWKS request.
type Keys struct {
	path string

	mu      sync.Mutex
	stamp   fileStamp
	signer  jose.Signer
	jobs    jose.Signer // signs with the same key, typ JobType
	public  []byte      // the JWKS document of the public keys
	current string      // the kid of the signing key
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadOrCreateKeys reads the key file at path, or, if there is none,
// creates it (and its directory) with one new key, readable by its owner
// only.
func LoadOrCreateKeys(path string) (*Keys, error) {
	k := &Keys{path: path}
	for range 3 { // another instance may create the file between our read and our create
		err := k.reload()
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create receipt key: %w", err)
		}
		data, err := encodeSet(append([]jose.JSONWebKey(nil), newKey()))
		if err != nil {
			return nil, err
		}
		err = keyfile.Create(path, data)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create receipt key: %w", err)
		}
	}
	return nil, fmt.Errorf("create receipt key: %s exists but cannot be read", path)
}

// Rotate adds a new signing key to the key file at path (creating the file
// if there is none) and returns its kid. The old keys stay in the file,
// published, no longer signing.
func Rotate(path string) (string, error) {
	keys, err := readSet(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("create receipt key: %w", err)
		}
	} else if err != nil {
		return "", err
	}
	key := newKey()
	data, err := encodeSet(append(keys, key))
	if err != nil {
		return "", err
	}
	if err := keyfile.Replace(path, data); err != nil {
		return "", fmt.Errorf("rotate receipt key: %w", err)
	}
	return key.KeyID, nil
}

// newKey makes an Ed25519 key whose kid is its thumbprint.
func newKey() jose.JSONWebKey {
	_, private, _ := ed25519.GenerateKey(rand.Reader) // never fails: it crashes the program instead
	key := jose.JSONWebKey{Key: private, Algorithm: string(jose.EdDSA), Use: "sig"}
	thumb, _ := key.Thumbprint(crypto.SHA256) // an Ed25519 key always has one
	key.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	return key
}

func encodeSet(keys []jose.JSONWebKey) ([]byte, error) {
	data, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: keys}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode receipt keys: %w", err)
	}
	return append(data, '\n'), nil
}

// readSet reads the private keys of the file at path. Errors never quote
// the file's content.
func readSet(path string) ([]jose.JSONWebKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Web Key Set", path)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	for i, key := range set.Keys {
		if _, ok := key.Key.(ed25519.PrivateKey); !ok || key.KeyID == "" {
			return nil, fmt.Errorf("%s: key %d is not an Ed25519 private key with a kid", path, i+1)
		}
	}
	return set.Keys, nil
}

// reload reads the key file if it changed since it was last read.
func (k *Keys) reload() error {
	info, err := os.Stat(k.path)
	if err != nil {
		return err
	}
	stamp := fileStamp{mod: info.ModTime(), size: info.Size()}
	k.mu.Lock()
	defer k.mu.Unlock()
	if stamp == k.stamp && k.signer != nil {
		return nil
	}
	keys, err := readSet(k.path)
	if err != nil {
		return err
	}
	current := keys[len(keys)-1]
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: current},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return fmt.Errorf("receipt key %s: %w", current.KeyID, err)
	}
	jobs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: current},
		(&jose.SignerOptions{}).WithType(JobType))
	if err != nil {
		return fmt.Errorf("receipt key %s: %w", current.KeyID, err)
	}
	public := make([]jose.JSONWebKey, len(keys))
	for i, key := range keys {
		public[i] = key.Public()
	}
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: public})
	if err != nil {
		return fmt.Errorf("encode receipt public keys: %w", err)
	}
	k.stamp, k.signer, k.jobs, k.public, k.current = stamp, signer, jobs, doc, current.KeyID
	return nil
}

// Refresh reads the key file again if it changed; on an error the keys
// read before stay in use.
func (k *Keys) Refresh() error { return k.reload() }

// JWKS returns the JSON Web Key Set of the public keys, the signing one
// last.
func (k *Keys) JWKS() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.public
}

// KeyID returns the kid of the signing key.
func (k *Keys) KeyID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current
}

// sign returns the compact JWS of payload under the signing key.
func (k *Keys) sign(payload []byte) (string, error) {
	k.mu.Lock()
	signer := k.signer
	k.mu.Unlock()
	return signWith(signer, payload)
}

// signJob returns the compact JWS of a job receipt's payload.
func (k *Keys) signJob(payload []byte) (string, error) {
	k.mu.Lock()
	signer := k.jobs
	k.mu.Unlock()
	return signWith(signer, payload)
}

func signWith(signer jose.Signer, payload []byte) (string, error) {
	object, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign receipt: %w", err)
	}
	return object.CompactSerialize()
}
