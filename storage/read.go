package storage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// Spans of a trace come back in one stable order: by start time, then span
// ID, client half before server half, then row identity.
const traceOrder = ` ORDER BY ts, span_id, kind, span_uid`

// Trace returns every stored span of a trace. With strict false a 128-bit
// ID also matches spans recorded under its lower 64 bits, and traces that
// differ only in the high bits come back together, as Zipkin's
// STRICT_TRACE_ID=false does.
func (s *Store) Trace(ctx context.Context, id zipkin.TraceID, strict bool) ([]zipkin.Span, error) {
	traces, err := s.Traces(ctx, []zipkin.TraceID{id}, strict)
	if err != nil || len(traces) == 0 {
		return nil, err
	}
	return traces[0], nil
}

// Traces returns the traces with these IDs, in the order asked, leaving out
// those with no spans. With strict false, IDs are compared on their lower
// 64 bits and a trace holds every span sharing them.
func (s *Store) Traces(ctx context.Context, ids []zipkin.TraceID, strict bool) ([][]zipkin.Span, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	key := func(id zipkin.TraceID) zipkin.TraceID {
		if !strict {
			id.High = 0
		}
		return id
	}
	lows := make([]int64, len(ids))
	want := make(map[zipkin.TraceID]bool, len(ids))
	for i, id := range ids {
		lows[i] = int64(id.Low)
		want[key(id)] = true
	}
	byID, err := spansByTrace(ctx, s.pool, lows, func(id zipkin.TraceID) (zipkin.TraceID, bool) {
		k := key(id)
		return k, want[k]
	})
	if err != nil {
		return nil, fmt.Errorf("read traces: %w", err)
	}
	out := make([][]zipkin.Span, 0, len(ids))
	for _, id := range ids {
		k := key(id)
		if spans := byID[k]; len(spans) > 0 {
			out = append(out, spans)
			delete(byID, k) // an ID asked twice is returned once
		}
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// spansByTrace reads the spans whose trace ID's lower half is in lows, in
// traceOrder, and groups them under the key group gives their trace ID;
// spans group refuses are skipped undecoded.
func spansByTrace(ctx context.Context, q querier, lows []int64,
	group func(zipkin.TraceID) (zipkin.TraceID, bool)) (map[zipkin.TraceID][]zipkin.Span, error) {
	rows, err := q.Query(ctx, `SELECT trace_id_low, trace_id_high, span FROM spans WHERE trace_id_low = ANY($1)`+traceOrder, lows)
	if err != nil {
		return nil, err
	}
	out := map[zipkin.TraceID][]zipkin.Span{}
	var low, high int64
	var payload []byte
	_, err = pgx.ForEachRow(rows, []any{&low, &high, &payload}, func() error {
		k, ok := group(zipkin.TraceID{High: uint64(high), Low: uint64(low)})
		if !ok {
			return nil
		}
		var sp zipkin.Span
		if err := zipkin.UnmarshalCanonical(payload, &sp); err != nil {
			return fmt.Errorf("stored span unreadable: %w", err)
		}
		out[k] = append(out[k], sp)
		return nil
	})
	return out, err
}

// FindTraces returns whole traces having a span that matches every
// criterion of q within (EndTs-Lookback, EndTs], newest match first, at
// most q.Limit. With strict false, traces are grouped by the lower 64
// bits of their ID.
func (s *Store) FindTraces(ctx context.Context, q zipkin.QueryRequest, strict bool) ([][]zipkin.Span, error) {
	ids, err := s.findTraceIDs(ctx, q, strict)
	if err != nil {
		return nil, err
	}
	return s.Traces(ctx, ids, strict)
}

// findTraceIDs walks matching spans newest first in pages and keeps the
// first q.Limit distinct traces: ordering spans by time lets the
// (local_service, ts) indexes stop early instead of grouping every match
// in the window.
func (s *Store) findTraceIDs(ctx context.Context, q zipkin.QueryRequest, strict bool) ([]zipkin.TraceID, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// The window's end is the page cursor: each page reads at or before
	// the oldest row of the previous one.
	where = append(where, "ts > "+arg(q.EndTs.Add(-q.Lookback)), "ts <= "+arg(q.EndTs))
	cursor := len(args) - 1
	if q.ServiceName != "" {
		where = append(where, "local_service = "+arg(pgText(q.ServiceName)))
	}
	if q.RemoteServiceName != "" {
		where = append(where, "remote_service = "+arg(pgText(q.RemoteServiceName)))
	}
	if q.SpanName != "" {
		where = append(where, "name = "+arg(pgText(q.SpanName)))
	}
	if len(q.AnnotationQuery) > 0 {
		terms := make([]string, len(q.AnnotationQuery))
		for i, t := range q.AnnotationQuery {
			terms[i] = term(t)
		}
		where = append(where, "terms @> "+arg(terms)+"::text[]")
	}
	if q.MinDuration > 0 {
		where = append(where, "duration >= "+arg(q.MinDuration))
	}
	if q.MaxDuration > 0 {
		where = append(where, "duration <= "+arg(q.MaxDuration))
	}
	page := min(max(q.Limit*8, 100), 5000)
	sql := `SELECT trace_id_low, trace_id_high, ts FROM spans WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ts DESC LIMIT ` + arg(page)
	seen := map[zipkin.TraceID]bool{}
	var ids []zipkin.TraceID
	last := q.EndTs
	for {
		// Rows at exactly the cursor were read already, except those cut
		// off by the page end; reading them again is harmless (seen).
		args[cursor] = last
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		var low, high int64
		var ts time.Time
		n, oldest := 0, last
		_, err = pgx.ForEachRow(rows, []any{&low, &high, &ts}, func() error {
			n++
			oldest = ts
			id := zipkin.TraceID{High: uint64(high), Low: uint64(low)}
			if !strict {
				id.High = 0
			}
			if !seen[id] && len(ids) < q.Limit {
				seen[id] = true
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		if len(ids) >= q.Limit || n < page {
			return ids, nil
		}
		if oldest.Equal(last) {
			// A whole page at one instant: step past it rather than loop.
			oldest = oldest.Add(-time.Microsecond)
		}
		last = oldest
	}
}

// ServiceNames lists local service names seen within retention, sorted.
func (s *Store) ServiceNames(ctx context.Context) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT service FROM span_names ORDER BY 1`)
}

// SpanNames lists the span names recorded by a service, sorted.
func (s *Store) SpanNames(ctx context.Context, service string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT name FROM span_names WHERE service = $1 ORDER BY 1`, pgText(service))
}

// RemoteServiceNames lists the services a service called, sorted.
func (s *Store) RemoteServiceNames(ctx context.Context, service string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT remote FROM remote_services WHERE service = $1 ORDER BY 1`, pgText(service))
}

// AutocompleteValues lists the values seen for an autocomplete tag key.
func (s *Store) AutocompleteValues(ctx context.Context, key string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT value FROM autocomplete_tags WHERE key = $1 ORDER BY 1`, pgText(key))
}

func (s *Store) names(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list names: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list names: %w", err)
	}
	if names == nil {
		names = []string{} // JSON [] rather than null
	}
	return names, nil
}
