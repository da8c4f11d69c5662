package graph

import (
	"context"
	"strconv"

	"entgo.io/contrib/entgql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/internal/scope"
)

// ErrBadCursor is an after cursor that no page of auditEvents returned.
var ErrBadCursor = &PublicError{Code: CodeBadUserInput, Message: "after is not a cursor of auditEvents"}

// auditEvents is viewer.auditEvents: the caller's own events, newest first,
// paged by id (the order in which the changes committed).
func (r *Resolver) auditEvents(ctx context.Context, obj *ent.User, after *entgql.Cursor[string], first *int, where *model.AuditEventFilter) (*model.AuditEventConnection, error) {
	if _, err := requireScope(ctx, scope.AuditRead); err != nil {
		return nil, err
	}
	limit, err := boundedFirst(first, nil)
	if err != nil {
		return nil, err
	}
	if *limit < 0 {
		return nil, &PublicError{Code: CodeBadUserInput, Message: "first must not be negative"}
	}
	query := r.client.AuditEvent.Query().Where(auditevent.OwnerID(obj.ID))
	if after != nil {
		id, err := strconv.Atoi(after.ID)
		if err != nil {
			return nil, ErrBadCursor
		}
		query.Where(auditevent.IDLT(id))
	}
	if where != nil {
		if where.UploadID != nil {
			query.Where(auditevent.UploadID(*where.UploadID))
		}
		if where.Kind != nil {
			query.Where(auditevent.KindEQ(*where.Kind))
		}
		if where.Since != nil {
			query.Where(auditevent.CreatedAtGTE(*where.Since))
		}
	}
	events, err := query.Order(ent.Desc(auditevent.FieldID)).Limit(*limit + 1).All(ctx)
	if err != nil {
		return nil, err
	}
	conn := &model.AuditEventConnection{Edges: []*model.AuditEventEdge{}, PageInfo: &entgql.PageInfo[string]{}}
	conn.PageInfo.HasPreviousPage = after != nil
	if len(events) > *limit {
		events, conn.PageInfo.HasNextPage = events[:*limit], true
	}
	for _, e := range events {
		conn.Edges = append(conn.Edges, &model.AuditEventEdge{Node: e, Cursor: entgql.Cursor[string]{ID: strconv.Itoa(e.ID)}})
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}
