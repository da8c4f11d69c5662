package purge

// The purger's fixed behaviour, for the tests to state their expectations
// in its own terms rather than in copied numbers.
const (
	Lease           = lease
	MinBackoff      = minBackoff
	BatchSize       = batchSize
	OutageThreshold = outageThreshold
)
