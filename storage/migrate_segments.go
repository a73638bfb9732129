package storage

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// segmentsMigration is goose migration 6, after 00004 (the segment tables)
// and 00005 (name tables keyed by hash), before 00007 (dropping `spans`): it moves the spans an existing
// install stored one row each into segments. It is Go because segments are
// zstd-compressed. It runs under the migration lock like every migration,
// commits one chunk of whole traces at a time and deletes what it moved in
// the same transaction, so an interrupted run resumes where it stopped and
// moves nothing twice.
const segmentsMigration = 6

// moveChunk is how many span rows one transaction moves (whole traces).
const moveChunk = 20000

func (s *Store) moveSpans(ctx context.Context, _ *sql.DB) error {
	// Daily partitions for the days the old table holds, so moved rows
	// land in them rather than in the defaults.
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'spans'::regclass AND c.relname LIKE 'spans\_p%'`)
	if err != nil {
		return fmt.Errorf("move spans: %w", err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("move spans: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, p := range parts {
			if d, err := time.Parse("20060102", strings.TrimPrefix(p, "spans_p")); err == nil {
				if err := s.ensurePartition(ctx, tx, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("move spans: %w", err)
	}
	began, total := time.Now(), 0
	for {
		n := 0
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `DELETE FROM spans WHERE trace_id_low IN (
				SELECT trace_id_low FROM spans ORDER BY trace_id_low LIMIT $1) RETURNING span`, moveChunk)
			if err != nil {
				return err
			}
			var spans []zipkin.Span
			var payload []byte
			_, err = pgx.ForEachRow(rows, []any{&payload}, func() error {
				var sp zipkin.Span
				if err := zipkin.UnmarshalCanonical(payload, &sp); err != nil {
					return fmt.Errorf("stored span unreadable: %w", err)
				}
				spans = append(spans, sp)
				return nil
			})
			if err != nil || len(spans) == 0 {
				return err
			}
			n = len(spans)
			w, err := s.prepare(spans, false) // trace_links already holds these traces' links
			if err != nil {
				return err
			}
			// span_stats comes later (migration 10): spans stored before
			// it have no service metrics.
			w.stats, w.uncounted, w.beforeTenants = nil, true, true
			return w.write(ctx, tx, defaultTenantID)
		})
		if err != nil {
			return fmt.Errorf("move spans: %w", err)
		}
		if n == 0 {
			break
		}
		total += n
		s.logger.Info("moving spans into segments", slog.Int("spans", total), slog.Duration("elapsed", time.Since(began)))
	}
	return nil
}
