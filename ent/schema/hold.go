package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/safedelete/uploads/internal/ids"
)

// Hold is a legal hold: while it is active (not released, and its until,
// if any, still ahead), no path deletes what it covers — one upload, or
// every upload of a user, present and future. The rows stay after release
// as the record of who held what, when and why. The uploads' (and users',
// and trash entries') held_until columns are what the deletes read; they
// are derived from the active holds by internal/holds.
type Hold struct {
	ent.Schema
}

// Fields of the Hold.
func (Hold) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			DefaultFunc(ids.NewHold).
			Immutable().
			NotEmpty(),
		field.String("user_id").
			Immutable().
			NotEmpty().
			Annotations(entgql.Skip()).
			Comment("The user held, or the owner of the upload held."),
		field.String("upload_id").
			Optional().
			Nillable().
			Immutable().
			Annotations(entgql.Skip()). // graph/holds.graphqls names it uploadId
			Comment("The upload held; absent for a hold on the whole user."),
		field.Text("reason").
			Immutable().
			NotEmpty(),
		field.String("placed_by").
			Immutable().
			NotEmpty().
			Comment("The credential that placed it (an API key's id, a token's identity), or cli."),
		field.Time("created_at").
			Immutable().
			Default(time.Now).
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Time("until").
			Optional().
			Nillable().
			Immutable().
			Comment("When it lapses by itself; absent: held until released."),
		field.Time("released_at").
			Optional().
			Nillable(),
		field.String("released_by").
			Default("").
			Comment("Who released it; empty while not released."),
	}
}

// Indexes of the Hold.
func (Hold) Indexes() []ent.Index {
	return []ent.Index{
		// A user's holds (holds list --user, viewer.holds, users delete).
		index.Fields("user_id", "created_at"),
		// An upload's holds (Upload.holds, deriving held_until).
		index.Fields("upload_id"),
	}
}

// Annotations of the Hold.
func (Hold) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}
