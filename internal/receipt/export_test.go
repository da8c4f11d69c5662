package receipt

// Sign signs payload as the issuer does, for the tests of the keys alone.
func (k *Keys) Sign(payload []byte) (string, error) { return k.sign(payload) }
