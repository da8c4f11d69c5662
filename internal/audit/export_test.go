package audit

// ForgetHints drops every chain head this process remembers, so that the
// next events take their heads as they would without a guess.
func ForgetHints() {
	hints.mu.Lock()
	defer hints.mu.Unlock()
	clear(hints.heads)
}
