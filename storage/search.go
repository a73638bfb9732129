package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// FindTraces returns whole traces having a span that matches every
// criterion of q within (EndTs-Lookback, EndTs], the trace with the newest
// matching span first, at most q.Limit. With strict false, traces are
// grouped by the lower 64 bits of their ID.
//
// span_index rows are coarse — one per (segment, minute), with hashed
// names and terms — so they only nominate candidate traces, walked
// newest row first in pages. Each candidate is read whole (it is returned
// anyway) and kept only if one of its spans matches q exactly, as Zipkin's
// rule "one span matches all criteria" demands. A row's spans start within
// indexBucket of its ts, so the walk can stop once Limit matches are newer
// than anything an unread row could hold.
func (s *Store) FindTraces(ctx context.Context, q zipkin.QueryRequest, strict bool) ([][]zipkin.Span, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	start, end := q.EndTs.Add(-q.Lookback), q.EndTs
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where = append(where, "ts > "+arg(start.Add(-indexBucket)), "ts <= "+arg(end))
	cursor := len(args) - 1 // the window's end moves down page by page
	var keys []int32
	if q.ServiceName != "" {
		keys = append(keys, key(keyService, q.ServiceName))
	}
	if q.RemoteServiceName != "" {
		keys = append(keys, key(keyRemote, q.RemoteServiceName))
	}
	if q.SpanName != "" {
		keys = append(keys, key(keyName, q.SpanName))
	}
	for _, t := range q.AnnotationQuery {
		keys = append(keys, key(keyTerm, t))
	}
	if len(keys) > 0 {
		where = append(where, "keys @> "+arg(keys))
	}
	if q.MinDuration > 0 {
		where = append(where, "dur_max >= "+arg(q.MinDuration))
	}
	if q.MaxDuration > 0 {
		where = append(where, "dur_min <= "+arg(q.MaxDuration))
	}
	page := min(max(q.Limit*4, 100), 5000)
	sql := `SELECT trace_id_low, trace_id_high, ts FROM span_index WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ts DESC LIMIT ` + arg(page)

	key := func(id zipkin.TraceID) zipkin.TraceID {
		if !strict {
			id.High = 0
		}
		return id
	}
	type match struct {
		at    int64 // start of the newest matching span
		spans []zipkin.Span
	}
	var matches []match
	seen := map[zipkin.TraceID]bool{}
	last := end
	for {
		args[cursor] = last
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		var low, high int64
		var ts time.Time
		var fresh []zipkin.TraceID
		n, oldest := 0, last
		_, err = pgx.ForEachRow(rows, []any{&low, &high, &ts}, func() error {
			n++
			oldest = ts
			if id := key(zipkin.TraceID{High: uint64(high), Low: uint64(low)}); !seen[id] {
				seen[id] = true
				fresh = append(fresh, id)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		traces, err := s.Traces(ctx, fresh, strict)
		if err != nil {
			return nil, err
		}
		for _, spans := range traces {
			if at, ok := newestMatch(spans, q, start.UnixMicro(), end.UnixMicro()); ok {
				matches = append(matches, match{at, spans})
			}
		}
		slices.SortStableFunc(matches, func(a, b match) int { return cmp.Compare(b.at, a.at) })
		if n < page {
			break
		}
		// Rows not read yet start at or before oldest, so their spans
		// start before oldest + indexBucket.
		if len(matches) >= q.Limit && matches[q.Limit-1].at >= oldest.Add(indexBucket).UnixMicro() {
			break
		}
		if oldest.Equal(last) {
			// A whole page at one instant: step past it rather than loop.
			oldest = oldest.Add(-time.Microsecond)
		}
		last = oldest
	}
	out := make([][]zipkin.Span, 0, min(len(matches), q.Limit))
	for _, m := range matches[:min(len(matches), q.Limit)] {
		out = append(out, m.spans)
	}
	return out, nil
}

// newestMatch reports the start of the newest span of a trace that matches
// every criterion of q and starts in (from, to] (µs).
func newestMatch(spans []zipkin.Span, q zipkin.QueryRequest, from, to int64) (int64, bool) {
	best, ok := int64(0), false
	for i := range spans {
		sp := &spans[i]
		if at := sp.StartTime(); at > from && at <= to && (!ok || at > best) && spanMatches(sp, q) {
			best, ok = at, true
		}
	}
	return best, ok
}

// spanMatches is Zipkin's per-span search predicate, without the window.
func spanMatches(sp *zipkin.Span, q zipkin.QueryRequest) bool {
	if q.ServiceName != "" && sp.LocalServiceName() != q.ServiceName ||
		q.RemoteServiceName != "" && sp.RemoteServiceName() != q.RemoteServiceName ||
		q.SpanName != "" && sp.Name != q.SpanName {
		return false
	}
	if q.MinDuration > 0 && (sp.Duration == 0 || sp.Duration < q.MinDuration) ||
		q.MaxDuration > 0 && (sp.Duration == 0 || sp.Duration > q.MaxDuration) {
		return false
	}
	for _, t := range q.AnnotationQuery {
		if !hasTerm(sp, t) {
			return false
		}
	}
	return true
}

// hasTerm mirrors forEachTerm: t is a tag key, a tag's key=value or an
// annotation value of the span.
func hasTerm(sp *zipkin.Span, t string) bool {
	for k, v := range sp.Tags {
		if k == t || len(t) == len(k)+1+len(v) && t[len(k)] == '=' && strings.HasPrefix(t, k) && strings.HasSuffix(t, v) {
			return true
		}
	}
	for _, a := range sp.Annotations {
		if a.Value == t {
			return true
		}
	}
	return false
}
