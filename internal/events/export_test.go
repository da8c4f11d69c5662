package events

// Reads is how many times the feed has read the trail: a test that needs
// a reading to happen between two commits waits for it.
func (f *Feed) Reads() int64 { return f.reads.Load() }
