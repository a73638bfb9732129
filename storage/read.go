package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// Trace returns every stored span of a trace. With strict false a 128-bit
// ID also matches spans recorded under its lower 64 bits, and traces that
// differ only in the high bits come back together, as Zipkin's
// STRICT_TRACE_ID=false does.
func (s *Store) Trace(ctx context.Context, id zipkin.TraceID, strict bool) ([]zipkin.Span, error) {
	q, args := `SELECT span FROM spans WHERE trace_id_low = $1`, []any{int64(id.Low)}
	if strict {
		q, args = q+` AND trace_id_high = $2`, append(args, int64(id.High))
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY ts, span_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	spans, err := collectSpans(rows)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	return spans, nil
}

func collectSpans(rows pgx.Rows) ([]zipkin.Span, error) {
	defer rows.Close()
	var out []zipkin.Span
	var payload []byte
	for rows.Next() {
		if err := rows.Scan(&payload); err != nil {
			return nil, err
		}
		var sp zipkin.Span
		if err := zipkin.UnmarshalCanonical(payload, &sp); err != nil {
			return nil, fmt.Errorf("stored span unreadable: %w", err)
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}
