package receipt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safedelete/uploads/internal/receipt"
)

func newKeys(t *testing.T) (*receipt.Keys, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys", "receipt-keys.json")
	keys, err := receipt.LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	return keys, path
}

func sign(t *testing.T, keys *receipt.Keys, payload string) string {
	t.Helper()
	jws, err := keys.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// TestKeyFileCreatedPrivate: the key file is made on first use, readable by
// its owner only, and read back (the same keys) on the next start.
func TestKeyFileCreatedPrivate(t *testing.T) {
	t.Parallel()
	keys, path := newKeys(t)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %#o, want 0600", perm)
	}
	again, err := receipt.LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.KeyID() != keys.KeyID() || string(again.JWKS()) != string(keys.JWKS()) {
		t.Errorf("a restart made new keys: kid %s, then %s", keys.KeyID(), again.KeyID())
	}
	if strings.Contains(string(keys.JWKS()), `"d"`) {
		t.Errorf("the public key set holds a private key: %s", keys.JWKS())
	}
}

// TestReceiptVerifies: a receipt verifies against the published keys and
// gives back its payload.
func TestReceiptVerifies(t *testing.T) {
	t.Parallel()
	keys, _ := newKeys(t)
	jws := sign(t, keys, `{"upload_id":"upl_1"}`)
	kid, payload, err := receipt.Verify(jws, keys.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	if kid != keys.KeyID() || string(payload) != `{"upload_id":"upl_1"}` {
		t.Errorf("verified kid %q payload %s", kid, payload)
	}
}

// TestChangedReceiptFails: changing any one byte of a receipt (any one
// character, in a bit it encodes), in its header, payload or signature,
// makes it fail to verify; so do a receipt cut short or made longer.
func TestChangedReceiptFails(t *testing.T) {
	t.Parallel()
	keys, _ := newKeys(t)
	jws := sign(t, keys, `{"upload_id":"upl_1","owner_id":"usr_1"}`)
	for i := range len(jws) {
		if jws[i] == '.' {
			continue
		}
		changed := []byte(jws)
		changed[i] = flip(changed[i])
		_, payload, err := receipt.Verify(string(changed), keys.JWKS())
		if !errors.Is(err, receipt.ErrInvalid) {
			t.Fatalf("character %d changed (%q): verified %s, err %v", i, changed[i], payload, err)
		}
	}
	for _, changed := range []string{jws + "A", jws[:len(jws)-1], strings.Replace(jws, ".", "..", 1)} {
		if _, payload, err := receipt.Verify(changed, keys.JWKS()); !errors.Is(err, receipt.ErrInvalid) {
			t.Errorf("%d characters: verified %s, err %v", len(changed), payload, err)
		}
	}
}

// flip returns the base64url character whose six bits differ from c's in
// the top one: the JWS stays well formed, so only the signature can catch
// the change. (The low bits of a part's last character may be unused,
// which decoders ignore: changing those changes no byte.)
func flip(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^32]
}

// TestRotatedKeyStillVerifies: after a rotation, new receipts are signed
// with the new key, and the old ones still verify against the published
// set, which holds both keys.
func TestRotatedKeyStillVerifies(t *testing.T) {
	t.Parallel()
	keys, path := newKeys(t)
	old := sign(t, keys, `{"n":1}`)
	oldKid := keys.KeyID()
	newKid, err := receipt.Rotate(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Refresh(); err != nil {
		t.Fatal(err)
	}
	if keys.KeyID() != newKid || newKid == oldKid {
		t.Fatalf("signing kid %s after rotation to %s (was %s)", keys.KeyID(), newKid, oldKid)
	}
	fresh := sign(t, keys, `{"n":2}`)
	for _, jws := range []string{old, fresh} {
		if _, _, err := receipt.Verify(jws, keys.JWKS()); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if kid, _, _ := receipt.Verify(fresh, keys.JWKS()); kid != newKid {
		t.Errorf("new receipt signed by %s, want %s", kid, newKid)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("rotated key file mode %#o, want 0600", perm)
	}
}

// TestUnknownKeyRefused: a receipt whose kid the set lacks is refused,
// saying so.
func TestUnknownKeyRefused(t *testing.T) {
	t.Parallel()
	keys, _ := newKeys(t)
	other, _ := newKeys(t)
	_, _, err := receipt.Verify(sign(t, keys, `{}`), other.JWKS())
	if !errors.Is(err, receipt.ErrInvalid) || !strings.Contains(err.Error(), "no public key") {
		t.Errorf("err %v, want no public key", err)
	}
}
