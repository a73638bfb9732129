package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// The per-span layout of migrations 00001–00003 (one row per span in
// `spans`, with its indexes) is kept only as the benchmarks' baseline — the
// "raw per-span COPY" that storage v2 is measured against — and as the
// input of the migration that moves such data into segments (moveSpans).
// A schema migrated only up to LegacyVersion has it (MigrateTo).

// LegacyVersion is the last migration of the per-span layout.
const LegacyVersion = 3

var legacyColumns = []string{
	"trace_id_low", "trace_id_high", "ts", "span_uid", "span_id", "parent_id", "kind",
	"local_service", "remote_service", "name", "duration", "is_error", "terms", "span",
}

// CopySpans is the raw, non-idempotent per-span path: COPY straight into
// the legacy `spans` table. It is the benchmark baseline.
func (s *Store) CopySpans(ctx context.Context, spans []zipkin.Span) error {
	rows := make([][]any, len(spans))
	for i := range spans {
		row, err := legacyRow(&spans[i])
		if err != nil {
			return err
		}
		rows[i] = row
	}
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"spans"}, legacyColumns, pgx.CopyFromRows(rows)); err != nil {
		return classify(fmt.Errorf("copy %d spans: %w", len(spans), err))
	}
	return nil
}

func legacyRow(sp *zipkin.Span) ([]any, error) {
	payload, err := sp.MarshalCanonical(nil)
	if err != nil {
		return nil, fmt.Errorf("encode span %s/%s: %w", sp.TraceID, sp.ID, err)
	}
	var parent, duration any
	if sp.ParentID != 0 {
		parent = int64(sp.ParentID)
	}
	if sp.Duration != 0 {
		duration = sp.Duration
	}
	var terms []string
	forEachTerm(sp, func(t string) { terms = append(terms, term(t)) })
	return []any{
		int64(sp.TraceID.Low), int64(sp.TraceID.High), time.UnixMicro(sp.StartTime()).UTC(), zipkin.UID(payload),
		int64(sp.ID), parent, int16(sp.Kind),
		pgText(sp.LocalServiceName()), pgText(sp.RemoteServiceName()), pgText(sp.Name),
		duration, sp.IsError(), terms, payload,
	}, nil
}
