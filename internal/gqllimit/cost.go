package gqllimit

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// ErrCodeComplexity is the code of an operation over the cost limit: the
// code gqlgen's own complexity limit used, which callers already know.
const ErrCodeComplexity = "COMPLEXITY_LIMIT_EXCEEDED"

// FilterBytesPerCost is how many bytes of a filter's strings cost 1.
const FilterBytesPerCost = 32

// Price is what a field costs beyond the 1 every field costs, and how often
// its selection runs. The zero Price is a field resolved once.
type Price struct {
	// Own is the cost of the field's own work, such as a COUNT query.
	Own int
	// Elements, for a list, is the most elements it returns given its
	// arguments (variables expanded): its selection costs that many times.
	Elements func(args map[string]any) int
	// Page, for a connection, is the most elements of its page: its
	// PerPage fields (edges) cost that many times, the others (totalCount,
	// pageInfo) once.
	Page func(args map[string]any) int
	// PerPage marks a connection's field that holds one entry per element.
	PerPage bool
}

// Cost refuses an operation whose cost exceeds Limit, and one whose filter
// has more than MaxFilterTerms terms. Every field costs 1 plus its Price's
// Own, and a list's selection is counted once per element it may return,
// times its parents' multiplicity: 490 aliases of a 100-element list under a
// 10-element list cost 490,000 times their fields, not 490. Arguments are
// read after variables are expanded, so a variable referenced N times counts
// N times. Fragments are measured once per page size, so the measure takes
// time linear in the document, like Limits.
//
// A filter is every argument whose type is one of Filters; its terms are
// every field given, every element of a list (filenameIn: [...]) and every
// and/or/not, counted after expansion. Each term costs FilterTermCost, and
// each FilterBytesPerCost bytes of its strings 1 more (a LIKE costs time
// in the length of its pattern), and a filter of more terms than MaxFilterTerms is BAD_USER_INPUT: it is refused
// before anything runs, rather than failing on the database's own limits.
type Cost struct {
	Limit          int
	Prices         map[string]Price // by "Type.field"
	Filters        map[string]bool  // input type names
	MaxFilterTerms int
	FilterTermCost int
}

var (
	_ graphql.HandlerExtension        = Cost{}
	_ graphql.OperationContextMutator = Cost{}
)

// ExtensionName implements graphql.HandlerExtension.
func (Cost) ExtensionName() string { return "OperationCost" }

// Validate implements graphql.HandlerExtension.
func (Cost) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (c Cost) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if opCtx.Operation == nil {
		return nil
	}
	cost, terms := c.Measure(opCtx.Operation, opCtx.Variables)
	switch {
	case terms > c.MaxFilterTerms:
		err := gqlerror.Errorf("%s; this one has %d", FilterTermsMessage(c.MaxFilterTerms), terms)
		errcode.Set(err, "BAD_USER_INPUT")
		return err
	case cost > c.Limit:
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", cost, c.Limit)
		errcode.Set(err, ErrCodeComplexity)
		return err
	}
	return nil
}

// FilterTermsMessage is the error message of a filter over the limit.
func FilterTermsMessage(maxTerms int) string {
	return fmt.Sprintf("a filter may have at most %d terms (each field given, each element of a list such as filenameIn, each and, or and not)", maxTerms)
}

// Measure returns the cost of op with vars, saturated just above the limit,
// and the terms of its largest filter.
func (c Cost) Measure(op *ast.OperationDefinition, vars map[string]any) (cost, maxTerms int) {
	m := &coster{Cost: c, vars: vars, memo: map[memoKey]int{}, cap: c.Limit + 1}
	if m.cap <= 0 {
		m.cap = math.MaxInt
	}
	cost = m.selections(op.SelectionSet, 1)
	return cost, m.maxTerms
}

type memoKey struct {
	fragment string
	page     int
}

type coster struct {
	Cost
	vars     map[string]any
	memo     map[memoKey]int
	cap      int
	maxTerms int
}

func (m *coster) add(a, b int) int { return min(a+b, m.cap) }

func (m *coster) mul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > m.cap/b {
		return m.cap
	}
	return min(a*b, m.cap)
}

// selections is the cost of set resolved once; page is the page size of the
// connection set belongs to (1 outside connections).
func (m *coster) selections(set ast.SelectionSet, page int) int {
	total := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			total = m.add(total, m.field(sel, page))
		case *ast.InlineFragment:
			total = m.add(total, m.selections(sel.SelectionSet, page))
		case *ast.FragmentSpread:
			total = m.add(total, m.fragment(sel, page))
		}
		if total >= m.cap {
			return total
		}
	}
	return total
}

func (m *coster) fragment(spread *ast.FragmentSpread, page int) int {
	key := memoKey{spread.Name, page}
	if c, ok := m.memo[key]; ok {
		return c
	}
	if spread.Definition == nil {
		return 0
	}
	// Validation has rejected fragment cycles; the placeholder only keeps
	// one from recursing forever should it get here.
	m.memo[key] = 0
	c := m.selections(spread.Definition.SelectionSet, page)
	m.memo[key] = c
	return c
}

func (m *coster) field(f *ast.Field, page int) int {
	var price Price
	if f.ObjectDefinition != nil {
		price = m.Prices[f.ObjectDefinition.Name+"."+f.Name]
	}
	args := m.arguments(f)
	own := 1 + price.Own
	if f.Definition != nil {
		for _, def := range f.Definition.Arguments {
			if def.Type != nil && m.Filters[def.Type.Name()] {
				var size filterSize
				size.add(args[def.Name])
				terms := size.terms
				m.maxTerms = max(m.maxTerms, terms)
				own = m.add(own, m.add(m.mul(terms, m.FilterTermCost), size.bytes/FilterBytesPerCost))
			}
		}
	}
	times, childPage := 1, 1
	if price.Elements != nil {
		times = max(price.Elements(args), 0)
	}
	if price.PerPage {
		times = page
	}
	if price.Page != nil {
		childPage = max(price.Page(args), 0)
	}
	return m.add(own, m.mul(times, m.selections(f.SelectionSet, childPage)))
}

// arguments are f's arguments with variables and defaults expanded; nil
// when they do not coerce (gqlgen refuses them itself, before any resolver
// runs), which prices lists at their defaults.
func (m *coster) arguments(f *ast.Field) (args map[string]any) {
	defer func() {
		if recover() != nil {
			args = nil
		}
	}()
	return f.ArgumentMap(m.vars)
}

// filterSize is the size of a filter value: its terms (each field given,
// each list element, each nested object, such as and, or and not, with its
// own terms) and the bytes of its strings. It takes time linear in the
// value, which the request body bounds.
type filterSize struct{ terms, bytes int }

func (z *filterSize) add(v any) {
	switch v := v.(type) {
	case nil:
	case map[string]any:
		for _, e := range v {
			switch e := e.(type) {
			case nil:
			case map[string]any:
				z.terms++
				z.add(e)
			case []any:
				if len(e) == 0 {
					z.terms++
				}
				z.add(e)
			default:
				z.terms++
				z.add(e)
			}
		}
	case []any:
		for _, e := range v {
			if e != nil {
				z.terms++ // a nested filter, or a value of an …In list
				z.add(e)
			}
		}
	case string:
		z.bytes += len(v)
	}
}

// IntArg returns args[name] as an int, and whether it was given as one.
func IntArg(args map[string]any, name string) (int, bool) {
	switch v := args[name].(type) {
	case int:
		return v, true
	case int32:
		return int(v), true
	case int64:
		return int(v), true
	case float64:
		return int(v), true
	case json.Number:
		n, err := strconv.Atoi(string(v))
		return n, err == nil
	}
	return 0, false
}

// ListLen returns the length of the list args[name] (0 when not a list).
func ListLen(args map[string]any, name string) int {
	list, _ := args[name].([]any)
	return len(list)
}
