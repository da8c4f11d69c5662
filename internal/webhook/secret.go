package webhook

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/webhookendpoint"
	"github.com/safedelete/uploads/internal/keyfile"
)

// KeySize is the length of the key endpoint secrets are sealed under
// (AES-256).
const KeySize = 32

// secretPrefix marks a signing secret as Standard Webhooks shows one.
const secretPrefix = "whsec_"

// secretSize is the length of a signing secret: as long as HMAC-SHA256's
// output, the spec's upper bound.
const secretSize = 32

// NewSecret returns a fresh signing secret: as shown to its owner once
// ("whsec_" and the base64 of its bytes), and its raw bytes.
func NewSecret() (display string, raw []byte) {
	raw = make([]byte, secretSize)
	_, _ = rand.Read(raw) // never fails: it crashes the program instead
	return secretPrefix + base64.StdEncoding.EncodeToString(raw), raw
}

// SecretOf returns an endpoint's signing secret as its owner was shown it:
// for the answer to a request that made it, replayed.
func SecretOf(sealer *Sealer, endpoint *ent.WebhookEndpoint) (string, error) {
	raw, err := sealer.Open(endpoint.ID, endpoint.Secret)
	if err != nil {
		return "", err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(raw), nil
}

// sign returns the webhook-signature header of one attempt: HMAC-SHA256 of
// "{id}.{timestamp}.{body}" keyed with the secret's raw bytes, as the
// Standard Webhooks spec has it.
func sign(secret []byte, messageID string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(messageID + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sealer encrypts endpoints' signing secrets for the database, with
// AES-256-GCM under the service's webhook key: a copy of the database
// alone does not let anyone sign as us.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer with a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("webhook key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// A random nonce for each seal, prepended to the ciphertext.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts an endpoint's secret. The endpoint's id is authenticated
// with it, so a sealed secret copied to another endpoint's row does not
// open there.
func (s *Sealer) Seal(endpointID string, secret []byte) []byte {
	return s.aead.Seal(nil, nil, secret, []byte(endpointID))
}

// Open decrypts what Seal returned for the same endpoint.
func (s *Sealer) Open(endpointID string, sealed []byte) ([]byte, error) {
	secret, err := s.aead.Open(nil, nil, sealed, []byte(endpointID))
	if err != nil {
		return nil, errors.New("the endpoint's secret does not open under the webhook key (was the key changed?)")
	}
	return secret, nil
}

// ParseKey decodes a webhook key given as base64 (a setting's value).
// Errors never quote the value.
func ParseKey(encoded string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, errors.New("webhook key: not base64")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("webhook key: %d bytes, want %d (openssl rand -base64 %d)", len(key), KeySize, KeySize)
	}
	return key, nil
}

// LoadOrCreateKey reads the base64 webhook key in the file at path, or, if
// there is none, creates the file (and its directory) with a new random
// key, readable by its owner only.
func LoadOrCreateKey(path string) ([]byte, error) {
	for range 3 { // a dangling symlink at path would loop for ever
		encoded, err := os.ReadFile(path)
		if err == nil {
			key, err := ParseKey(string(encoded))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return key, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// The directory too: with PostgreSQL and S3 nothing else needs
		// DATA_DIR, so nothing else has made it.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create webhook key: %w", err)
		}
		key := make([]byte, KeySize)
		_, _ = rand.Read(key)
		err = keyfile.Create(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
		if errors.Is(err, fs.ErrExist) {
			continue // another instance created it first: use its key
		}
		if err != nil {
			return nil, fmt.Errorf("create webhook key: %w", err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("create webhook key: %s exists but cannot be read", path)
}

// CheckKey reports whether sealer opens the stored secrets, trying the
// newest enabled endpoint's: with a key that does not (WEBHOOK_KEY_FILE
// replaced, or a database restored from another deployment), no delivery
// can be signed and all would wait. Without endpoints it reads one row.
func CheckKey(ctx context.Context, client *ent.Client, sealer *Sealer) error {
	endpoint, err := client.WebhookEndpoint.Query().
		Where(webhookendpoint.DisabledAtIsNil()).
		Order(webhookendpoint.ByCreatedAt(sql.OrderDesc()), webhookendpoint.ByID(sql.OrderDesc())).
		Select(webhookendpoint.FieldID, webhookendpoint.FieldSecret).
		First(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read a webhook endpoint: %w", err)
	}
	if _, err := sealer.Open(endpoint.ID, endpoint.Secret); err != nil {
		return fmt.Errorf("the webhook key (WEBHOOK_KEY_FILE) does not open endpoint %s's secret: %w", endpoint.ID, err)
	}
	return nil
}
