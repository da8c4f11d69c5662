package database

import (
	"context"
	"fmt"

	"github.com/safedelete/uploads/ent"
)

// WithTx runs fn in a transaction of client: committed when fn returns nil,
// rolled back when it returns an error or panics. fn's error is returned as
// it is, so that callers can tell their own sentinel errors apart.
func WithTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Tx) error) error {
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if v := recover(); v != nil {
			_ = tx.Rollback()
			panic(v)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the transaction's failure is fn's error
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
