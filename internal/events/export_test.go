package events

// Reads is how many times the feed has read the trail: a test that needs
// a reading to happen between two commits waits for it.
func (f *Feed) Reads() int64 { return f.reads.Load() }

// Open is how many subscriptions are open.
func (f *Feed) Open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, subs := range f.owners {
		n += len(subs)
	}
	return n
}
