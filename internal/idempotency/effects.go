package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/idempotencykey"
)

type claimKey struct{}

// WithClaim returns ctx carrying c: the effects of the request's work are
// recorded on it.
func WithClaim(ctx context.Context, c *Claim) context.Context {
	return context.WithValue(ctx, claimKey{}, c)
}

func claimFrom(ctx context.Context) *Claim {
	c, _ := ctx.Value(claimKey{}).(*Claim)
	return c
}

// field names the effect of the root field being resolved (its response
// key, so that two aliases of one mutation are two effects); "" outside
// GraphQL (the REST delete, one effect per request).
func field(ctx context.Context) string {
	fc := graphql.GetFieldContext(ctx)
	for fc != nil && fc.Parent != nil && fc.Parent.Field.Field != nil {
		fc = fc.Parent
	}
	if fc == nil || fc.Field.Field == nil {
		return ""
	}
	return fc.Field.Alias
}

// Recorded decodes into v what the current root field did in an earlier
// run of this request whose effect committed but whose answer was never
// stored (its instance died), and reports whether there was such an
// effect. Outside a keyed request it is always false.
func Recorded(ctx context.Context, v any) bool {
	c := claimFrom(ctx)
	if c == nil {
		return false
	}
	effects, err := decode(c.effects)
	if err != nil {
		return false
	}
	raw, ok := effects[field(ctx)]
	return ok && json.Unmarshal(raw, v) == nil
}

// Record writes v as what the current root field did, in tx: the
// transaction of the effect itself, so that the effect and its record
// commit together or not at all. Outside a keyed request it does nothing.
func Record(ctx context.Context, tx *ent.Tx, v any) error {
	return update(ctx, tx, func(json.RawMessage) (any, error) { return v, nil })
}

// Append adds ids to the list the current root field recorded (a delete
// in batches records each batch in its transaction).
func Append(ctx context.Context, tx *ent.Tx, ids ...string) error {
	return update(ctx, tx, func(prev json.RawMessage) (any, error) {
		var list []string
		if prev != nil {
			if err := json.Unmarshal(prev, &list); err != nil {
				return nil, err
			}
		}
		return append(list, ids...), nil
	})
}

// update rewrites the current root field's record in tx, reading the
// row's effects in tx (what committed before, and what this transaction
// wrote). The claim's copy stays what committed before the request began:
// Recorded is asked once per root field, before its work.
func update(ctx context.Context, tx *ent.Tx, next func(prev json.RawMessage) (any, error)) error {
	c := claimFrom(ctx)
	if c == nil {
		return nil
	}
	var stored []byte
	writes := c.writes.Add(1)
	if c.deferred && writes > 1 {
		return errors.New("idempotency: a deferred claim records one effect") // BeginDeferred is for the REST delete's
	}
	if !c.fresh || writes > 1 { // else nothing is there to read
		row, err := tx.IdempotencyKey.Query().
			Where(idempotencykey.ID(c.id)).
			Select(idempotencykey.FieldEffects).
			Only(ctx)
		if err != nil {
			return fmt.Errorf("read idempotency effects: %w", err)
		}
		if row.Effects != nil {
			stored = *row.Effects
		}
	}
	effects, err := decode(stored)
	if err != nil {
		return err
	}
	name := field(ctx)
	v, err := next(effects[name])
	if err != nil {
		return fmt.Errorf("idempotency effect: %w", err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("idempotency effect: %w", err)
	}
	effects[name] = raw
	encoded, err := json.Marshal(effects)
	if err != nil {
		return err
	}
	if c.deferred { // the key's row, written now with its effect and answer
		if err := c.insert(ctx, tx, c.prediction, c.sealedPrediction, encoded); err != nil {
			if errors.Is(err, ErrLost) {
				c.lost.Store(true)
			}
			return err
		}
		if c.prediction != nil {
			c.answeredInTx.Store(true)
		}
		return nil
	}
	// Update, not UpdateOneID: no read of the row back after the write.
	record := tx.IdempotencyKey.Update().Where(c.held()).SetEffects(encoded)
	if c.prediction != nil { // the answer, with the effect
		record.SetStatus(c.prediction.Status).SetContentType(c.prediction.ContentType).
			SetBody(c.sealedPrediction).SetScopes(c.scopes.String()).SetLockedUntil(time.Now())
	}
	n, err := record.Save(ctx)
	if err != nil {
		return fmt.Errorf("record idempotency effect: %w", err)
	}
	if n == 0 { // taken over: the effect must not commit
		return ErrLost
	}
	if c.prediction != nil {
		c.answeredInTx.Store(true)
	}
	return nil
}

func decode(effects []byte) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(effects) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(effects, &m); err != nil {
		return nil, fmt.Errorf("idempotency effects: %w", err)
	}
	return m, nil
}
