package queue

// Listening is closed once Listen listens.
func (q *Queue) Listening() <-chan struct{} { return q.listening }

// LeaderPID is the PostgreSQL backend of the connection holding the lead.
func (q *Queue) LeaderPID() uint32 {
	q.election.Lock()
	defer q.election.Unlock()
	return q.leader.PgConn().PID()
}
