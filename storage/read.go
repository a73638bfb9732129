package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// Traces returns the traces with these IDs of the tenant ctx acts for, in
// the order asked, leaving out those with no spans. With strict false, IDs are compared on their lower
// 64 bits and a trace holds every span sharing them.
func (s *Store) Traces(ctx context.Context, ids []zipkin.TraceID, strict bool) ([][]zipkin.Span, error) {
	tenant, ok, err := s.readTenant(ctx)
	if len(ids) == 0 || !ok || err != nil {
		return nil, err
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
	select {
	case s.traceReads <- struct{}{}:
		defer func() { <-s.traceReads }()
	case <-ctx.Done():
		return nil, fmt.Errorf("read traces: %w", ctx.Err())
	}
	byID, err := spansByTrace(ctx, s.pool, tenant, lows, func(id zipkin.TraceID) (zipkin.TraceID, bool) {
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
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// spansByTrace reads the segments whose trace ID's lower half is in lows
// and groups their spans under the key group gives their trace ID, each
// distinct span once, in compareCanonical order; segments group refuses
// are skipped undecoded.
func spansByTrace(ctx context.Context, q querier, tenant int16, lows []int64,
	group func(zipkin.TraceID) (zipkin.TraceID, bool)) (map[zipkin.TraceID][]zipkin.Span, error) {
	builders, err := readSegments(ctx, q, tenant, lows, group)
	if err != nil {
		return nil, err
	}
	out := make(map[zipkin.TraceID][]zipkin.Span, len(builders))
	for k, b := range builders {
		out[k] = b.result()
	}
	return out, nil
}

// segKey is a segment's primary key.
type segKey struct {
	ts  time.Time
	uid int64
}

// readSegments reads and merges the segments of tenant's traces whose
// ID's lower half is in lows, keyed as group says; each builder also lists the
// keys of the segments it merged.
func readSegments(ctx context.Context, q querier, tenant int16, lows []int64,
	group func(zipkin.TraceID) (zipkin.TraceID, bool)) (map[zipkin.TraceID]*traceBuilder, error) {
	builders := map[zipkin.TraceID]*traceBuilder{}
	err := eachSegment(ctx, q, tenant, lows, func(id zipkin.TraceID, key segKey) func([]byte) error {
		k, ok := group(id)
		if !ok {
			return nil
		}
		b := builders[k]
		if b == nil {
			b = &traceBuilder{}
			builders[k] = b
		}
		b.segments = append(b.segments, key)
		return b.add
	})
	if err != nil {
		return nil, err
	}
	return builders, nil
}

// eachSegment reads the segments of tenant's traces whose ID's lower half
// is in lows: for each, visit says what to call with each of its spans'
// canonical bytes (nil: skip the segment undecoded).
func eachSegment(ctx context.Context, q querier, tenant int16, lows []int64, visit func(zipkin.TraceID, segKey) func(canonical []byte) error) error {
	var r segmentRow
	var buf []byte
	var packed members
	entries, err := rowsAndEntries(ctx, q, tenant, lows, `SELECT trace_id_low, trace_id_high, ts, seg_uid, data FROM segments
		WHERE trace_id_low = ANY($2) AND tenant = $1`, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&r.low, &r.high, &r.ts, &r.uid, &r.data}, func() error {
			fn := visit(zipkin.TraceID{High: uint64(r.high), Low: uint64(r.low)}, segKey{r.ts, r.uid})
			if fn == nil {
				return nil
			}
			var err error
			buf, err = r.split(tenant, buf, &packed, fn)
			return err
		})
		return err
	})
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if fn := visit(e.id, e.segKey()); fn != nil {
			packed = append(packed, e.member(fn, nil))
		}
	}
	return packed.read(ctx, q)
}

// segmentRow is a segments row as readers scan it: data is its payload,
// or a reference into a block (block.go).
type segmentRow struct {
	low, high, uid int64
	ts             time.Time
	data           []byte
}

// split calls fn with the row's spans now, or records it in packed to
// call once the blocks are read.
func (r *segmentRow) split(tenant int16, buf []byte, packed *members, fn func([]byte) error) ([]byte, error) {
	if isBlockRef(r.data) {
		return buf, packed.add(tenant, r.ts, r.data, fn, nil)
	}
	return splitSegment(r.data, buf, fn)
}

// ServiceNames lists local service names seen within retention, sorted.
// The name reads are the tenant's that ctx acts for.
func (s *Store) ServiceNames(ctx context.Context) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT service FROM span_names WHERE tenant = $1 ORDER BY 1`)
}

// SpanNames lists the span names recorded by a service, sorted.
func (s *Store) SpanNames(ctx context.Context, service string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT name FROM span_names WHERE tenant = $1 AND service_h = $2 AND service = $3 ORDER BY 1`,
		nameKey(pgText(service), ""), pgText(service))
}

// RemoteServiceNames lists the services a service called, sorted.
func (s *Store) RemoteServiceNames(ctx context.Context, service string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT remote FROM remote_services WHERE tenant = $1 AND service_h = $2 AND service = $3 ORDER BY 1`,
		nameKey(pgText(service), ""), pgText(service))
}

// AutocompleteValues lists the values seen for an autocomplete tag key.
func (s *Store) AutocompleteValues(ctx context.Context, key string) ([]string, error) {
	return s.names(ctx, `SELECT DISTINCT value FROM autocomplete_tags WHERE tenant = $1 AND key_h = $2 AND key = $3 ORDER BY 1`,
		nameKey(pgText(key), ""), pgText(key))
}

// names runs q with the tenant's number as $1, then args.
func (s *Store) names(ctx context.Context, q string, args ...any) ([]string, error) {
	tenant, ok, err := s.readTenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("list names: %w", err)
	}
	if !ok {
		return []string{}, nil
	}
	rows, err := s.pool.Query(ctx, q, append([]any{tenant}, args...)...)
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

// CountSpans reads every segment (of every tenant) and reports how many spans they hold and
// how many distinct spans readers see (a span stored twice by a
// redelivered message counts once there, as in every read). It reads
// everything: for tests, benchmarks and spot checks, never a hot path.
func (s *Store) CountSpans(ctx context.Context) (stored, distinct int, err error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant, trace_id_low, trace_id_high, ts, data FROM segments`)
	if err != nil {
		return 0, 0, fmt.Errorf("count spans: %w", err)
	}
	type trace struct {
		tenant int16
		id     zipkin.TraceID
	}
	seen := map[trace]map[uint64]bool{}
	count := func(id trace) func([]byte) error {
		if seen[id] == nil {
			seen[id] = map[uint64]bool{}
		}
		return func(b []byte) error {
			stored++
			seen[id][xxhash.Sum64(b)] = true
			return nil
		}
	}
	var tenant int16
	var r segmentRow
	var buf []byte
	var packed members
	_, err = pgx.ForEachRow(rows, []any{&tenant, &r.low, &r.high, &r.ts, &r.data}, func() error {
		var err error
		buf, err = r.split(tenant, buf, &packed, count(trace{tenant, zipkin.TraceID{High: uint64(r.high), Low: uint64(r.low)}}))
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count spans: %w", err)
	}
	entries, err := packedEntries(ctx, s.pool, "true", nil, func(int16, *dirEntry) bool { return true })
	if err != nil {
		return 0, 0, fmt.Errorf("count spans: %w", err)
	}
	for i := range entries {
		e := &entries[i]
		packed = append(packed, e.member(count(trace{e.tenant, e.id}), nil))
	}
	if err := packed.read(ctx, s.pool); err != nil {
		return 0, 0, fmt.Errorf("count spans: %w", err)
	}
	for _, spans := range seen {
		distinct += len(spans)
	}
	return stored, distinct, nil
}
