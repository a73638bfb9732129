package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// The background jobs (the linker and the compactor) share one shape: a
// transaction that only one process per schema runs at a time, claiming
// queued traces from a table of its own, and a loop that runs rounds back
// to back while a backlog remains.

// job runs fn in a transaction holding the job's advisory lock for the
// schema; when another process holds it, fn does not run.
func (s *Store) job(ctx context.Context, name string, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.zipq.' || $1))`, name).Scan(&locked); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if !locked {
			return nil
		}
		return fn(tx)
	})
}

// claim takes up to limit queued traces out of table (its key is the
// trace ID and the tenant; cols are its other columns, scanned into dest):
// rows another process holds are skipped, and a row queued again while
// claimed waits for this transaction's commit and is then queued anew, so
// nothing is lost. fn is called with each tenant and trace ID once its row
// is scanned.
func claim(ctx context.Context, tx pgx.Tx, table string, cols []string, limit int, dest []any, fn func(int16, zipkin.TraceID)) error {
	ret := strings.Join(append([]string{"tenant", "trace_id_low", "trace_id_high"}, cols...), ", ")
	rows, err := tx.Query(ctx, `DELETE FROM `+table+` WHERE (trace_id_low, trace_id_high, tenant) IN (
		SELECT trace_id_low, trace_id_high, tenant FROM `+table+` LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING `+ret, limit)
	if err != nil {
		return fmt.Errorf("claim %s: %w", table, err)
	}
	var tenant int16
	var low, high int64
	_, err = pgx.ForEachRow(rows, append([]any{&tenant, &low, &high}, dest...), func() error {
		fn(tenant, zipkin.TraceID{High: uint64(high), Low: uint64(low)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("claim %s: %w", table, err)
	}
	return nil
}

// every runs round at each tick of interval, and back to back while it
// reports more work, until ctx ends. A failed round is logged and retried
// at the next tick: a database outage must not stop the process that
// would recover from it.
func (s *Store) every(ctx context.Context, interval time.Duration, what string, round func(context.Context) (more bool, err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		more, err := round(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn(what+" failed", slog.Any("err", err))
		}
		if more && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
