package audit

import "maps"

// ForgetHints drops every chain head this process remembers, so that the
// next events take their heads as they would without a guess.
func ForgetHints() {
	hints.mu.Lock()
	defer hints.mu.Unlock()
	clear(hints.heads)
}

// SaveHints returns a function that puts back the chain heads this process
// remembers now: what it remembered before another process moved them on.
func SaveHints() (restore func()) {
	hints.mu.Lock()
	defer hints.mu.Unlock()
	saved := maps.Clone(hints.heads)
	return func() {
		hints.mu.Lock()
		defer hints.mu.Unlock()
		hints.heads = saved
	}
}

// GuessesHeld is how many events' chain heads were moved on from a right
// guess, in this process.
func GuessesHeld() int64 { return guessesHeld.Load() }
