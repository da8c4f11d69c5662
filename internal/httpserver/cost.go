package httpserver

import (
	"github.com/safedelete/uploads/graph"
	"github.com/safedelete/uploads/internal/gqllimit"
	"github.com/safedelete/uploads/internal/webhook"
)

// The cost model's numbers, documented in the schema where a caller reads
// them (schema.graphqls, on Query.viewer and the fields they price).
const (
	// CountCost is what a totalCount costs: a COUNT query reads every
	// matching row, as much work as a full page or more.
	CountCost = graph.MaxPageSize
	// MaxFilterTerms bounds one filter (where): far below the databases'
	// own limits (SQLite's 1,000-deep expressions, 32,766 variables), so
	// that a filter is refused as the caller's error before it runs.
	MaxFilterTerms = graph.MaxFilterTerms
	// FilterTermCost is what each term of a filter costs: each is
	// evaluated against every one of the caller's uploads.
	FilterTermCost = graph.FilterTermCost
)

// operationCost is the cost model of the API: every list priced by the
// most elements it returns, times its parents' (see gqllimit.Cost). A test
// checks that every list and connection of the schema has its price here.
func operationCost(limit int) gqllimit.Cost {
	page := func(args map[string]any) int {
		first, hasFirst := gqllimit.IntArg(args, "first")
		last, hasLast := gqllimit.IntArg(args, "last")
		return pageSize(hasFirst, first, hasLast, last)
	}
	connection := gqllimit.Price{Page: page}
	perPage := gqllimit.Price{PerPage: true}
	count := gqllimit.Price{Own: CountCost}
	return gqllimit.Cost{
		Limit: limit,
		Prices: map[string]gqllimit.Price{
			"User.uploads":                       connection,
			"UploadConnection.edges":             perPage,
			"UploadConnection.totalCount":        count,
			"User.deletedUploads":                connection,
			"DeletedUploadConnection.edges":      perPage,
			"DeletedUploadConnection.totalCount": count,
			"User.auditEvents":                   connection,
			"User.deletionJobs":                  connection,
			"DeletionJobConnection.edges":        perPage,
			"DeletionJobConnection.totalCount":   count,
			"AuditEventConnection.edges":         perPage,
			"DeletionJobReceipt.uploadReceipts":  connection,
			// A page, not a relay connection: priced per element of the
			// page uploadReceipts asked for (PerPage wins; Elements is
			// the most a page holds).
			"JobUploadReceiptPage.items": {PerPage: true, Elements: func(map[string]any) int { return graph.MaxPageSize }},
			"User.holds":                 connection,
			"HoldConnection.edges":       perPage,
			"HoldConnection.totalCount":  count,
			"Upload.holds":               {Elements: func(map[string]any) int { return graph.MaxUploadHolds }},
			"Query.nodes": {Elements: func(args map[string]any) int {
				return max(gqllimit.ListLen(args, "ids"), 1)
			}},
			// Introspection answers with the whole schema, however few
			// fields ask for it: half the limit, so that an operation may
			// introspect once (the playground does) and not more.
			"Query.__schema":        {Own: limit / 2},
			"Query.__type":          {Own: limit / 20},
			"User.webhookEndpoints": {Elements: func(map[string]any) int { return webhook.MaxEndpointsPerOwner }},
			"WebhookEndpoint.deliveries": {Elements: func(args map[string]any) int {
				first, ok := gqllimit.IntArg(args, "first")
				if !ok {
					return graph.DefaultDeliveriesPage
				}
				if first > webhook.MaxDeliveriesPage {
					// Over the maximum, the resolver refuses it before
					// reading anything, in terms that say why.
					return 1
				}
				return max(first, 1)
			}},
		},
		Filters:        map[string]bool{"UploadWhereInput": true, "AuditEventFilter": true},
		MaxFilterTerms: MaxFilterTerms,
		FilterTermCost: FilterTermCost,
	}
}

// pageSize is how many elements a connection's page may hold, for its
// cost: what the resolver returns at most.
func pageSize(hasFirst bool, first int, hasLast bool, last int) int {
	n := graph.DefaultPageSize
	switch {
	case hasFirst:
		n = first
	case hasLast:
		n = last
	}
	if n > graph.MaxPageSize {
		// The resolver refuses it (BAD_USER_INPUT) before querying
		// anything; the cost limit must not answer first, in terms that
		// do not say what is wrong.
		return 1
	}
	return max(n, 1)
}
