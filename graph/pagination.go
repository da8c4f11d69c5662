package graph

import "fmt"

// Page sizes of viewer.uploads, documented on Query.viewer in schema.graphqls.
const (
	// DefaultPageSize is how many uploads a page holds when the caller
	// gives neither first nor last (a full page): without it, one request
	// would list every upload an account has.
	DefaultPageSize = 100
	// MaxPageSize is the most uploads one page may hold. A page costs its
	// size times the fields selected per upload against
	// GRAPHQL_COMPLEXITY_LIMIT (1000 by default), so a larger maximum
	// would mostly be refused by that limit instead, in terms of
	// complexity rather than of page size.
	MaxPageSize = 100
)

// ErrPageTooLarge is a connection asked for more than MaxPageSize elements.
var ErrPageTooLarge = &PublicError{
	Code:    CodeBadUserInput,
	Message: fmt.Sprintf("first and last may be at most %d", MaxPageSize),
}

// boundedFirst returns the first to paginate with: DefaultPageSize when
// neither first nor last is given, ErrPageTooLarge when either is above
// MaxPageSize. Negative values and both together are left to entgql, whose
// errors already say what is wrong.
func boundedFirst(first, last *int) (*int, error) {
	switch {
	case first == nil && last == nil:
		n := DefaultPageSize
		return &n, nil
	case first != nil && *first > MaxPageSize, last != nil && *last > MaxPageSize:
		return nil, ErrPageTooLarge
	}
	return first, nil
}

// Limits of a filter (UploadWhereInput, AuditEventFilter), documented on
// Query.viewer in schema.graphqls and enforced, with the page sizes, by
// the server's cost model before anything runs.
const (
	// MaxFilterTerms is the most terms one filter may have: each field
	// given, each element of a list (filenameIn) and each and, or and not.
	MaxFilterTerms = 100
	// FilterTermCost is what each term costs against
	// GRAPHQL_COMPLEXITY_LIMIT, where the filter is given.
	FilterTermCost = 2
)
