package queue

// Listening is closed once Listen listens.
func (q *Queue) Listening() <-chan struct{} { return q.listening }
