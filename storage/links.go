package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// LinkBatch is how many marked traces one linker round takes.
const LinkBatch = 1000

// Link brings dependency links up to date for up to max marked traces and
// returns how many it took. It also compacts them: a trace stored as
// several segments (its services reported in different batches, or a
// redelivery cut it differently) is rewritten as one segment holding each
// distinct span once, which reads faster and compresses better. Each trace is linked whole, from every span
// stored for it, and its previous contribution to the hourly totals is
// replaced, so late spans change the graph instead of double counting.
// One linker runs at a time per schema (an advisory lock); others return 0.
//
// A writer that marks a trace while the linker holds its mark waits for
// the linker's commit and then marks it again: its spans are linked in
// the next round, never lost.
func (s *Store) Link(ctx context.Context, max int) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.zipq.link'))`).Scan(&locked); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if !locked {
			return nil
		}
		ids, err := claimPending(ctx, tx, max)
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		lows := make([]int64, 0, len(ids))
		for id := range ids {
			lows = append(lows, int64(id.Low))
		}
		slices.Sort(lows)
		lows = slices.Compact(lows)
		builders, err := readSegments(ctx, tx, lows, func(id zipkin.TraceID) (zipkin.TraceID, bool) { return id, ids[id] })
		if err != nil {
			return fmt.Errorf("read spans: %w", err)
		}
		if err := compact(ctx, tx, builders); err != nil {
			return err
		}
		traces := make(map[zipkin.TraceID][]zipkin.Span, len(builders))
		for id, b := range builders {
			traces[id] = b.result()
		}
		old, err := linksOf(ctx, tx, lows, ids)
		if err != nil {
			return err
		}
		delta := map[hourLink]*zipkin.DependencyLink{}
		for _, tl := range old {
			addDelta(delta, tl, -1)
		}
		fresh := make([]traceLinks, 0, len(traces))
		for id, spans := range traces {
			tl := traceLinks{id: id, hour: traceHour(spans), links: zipkin.Link(spans)}
			for i := range tl.links { // stored as text: no NUL, valid UTF-8
				tl.links[i].Parent, tl.links[i].Child = pgText(tl.links[i].Parent), pgText(tl.links[i].Child)
			}
			if len(tl.links) > 0 {
				fresh = append(fresh, tl)
				addDelta(delta, tl, 1)
			}
		}
		if err := replaceTraceLinks(ctx, tx, ids, fresh); err != nil {
			return err
		}
		return applyDelta(ctx, tx, delta)
	})
	if err != nil {
		return 0, fmt.Errorf("link dependencies: %w", err)
	}
	return n, nil
}

// RunLinker links marked traces every LinkInterval, and back to back while
// a backlog remains, until ctx ends. Failures are logged and retried.
func (s *Store) RunLinker(ctx context.Context) error {
	t := time.NewTicker(s.cfg.LinkInterval)
	defer t.Stop()
	for {
		n, err := s.Link(ctx, LinkBatch)
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("dependency linking failed", slog.Any("err", err))
		}
		if n == LinkBatch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// compactMaxSpans bounds compaction: a trace larger than this (one that
// keeps growing for an hour, say) stays in its segments rather than being
// rewritten whole each time it grows.
const compactMaxSpans = 10000

// compact replaces each multi-segment trace's segments by their merge.
func compact(ctx context.Context, tx pgx.Tx, builders map[zipkin.TraceID]*traceBuilder) error {
	b := &pgx.Batch{}
	for id, tb := range builders {
		if len(tb.segments) < 2 || len(tb.spans) > compactMaxSpans {
			continue
		}
		seg := tb.merged(id)
		ts := time.UnixMicro(seg.ts).UTC()
		b.Queue(`INSERT INTO segments (trace_id_low, ts, seg_uid, trace_id_high, span_count, dict, data)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			int64(id.Low), ts, seg.uid, int64(id.High), int32(len(seg.spans)), int16(currentDict), seg.data)
		olds, uids := make([]time.Time, 0, len(tb.segments)), make([]int64, 0, len(tb.segments))
		for _, k := range tb.segments {
			if !k.ts.Equal(ts) || k.uid != seg.uid {
				olds, uids = append(olds, k.ts), append(uids, k.uid)
			}
		}
		b.Queue(`DELETE FROM segments s USING unnest($2::timestamptz[], $3::bigint[]) AS o(ts, uid)
			WHERE s.trace_id_low = $1 AND s.ts = o.ts AND s.seg_uid = o.uid`, int64(id.Low), olds, uids)
		tb.segments = []segKey{{ts, seg.uid}}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("compact segments: %w", err)
	}
	return nil
}

type traceLinks struct {
	id    zipkin.TraceID
	hour  time.Time
	links []zipkin.DependencyLink
}

type hourLink struct {
	hour          time.Time
	parent, child string
}

func addDelta(delta map[hourLink]*zipkin.DependencyLink, tl traceLinks, sign int64) {
	for _, l := range tl.links {
		k := hourLink{tl.hour, l.Parent, l.Child}
		d := delta[k]
		if d == nil {
			d = &zipkin.DependencyLink{Parent: l.Parent, Child: l.Child}
			delta[k] = d
		}
		d.CallCount += sign * l.CallCount
		d.ErrorCount += sign * l.ErrorCount
	}
}

// traceHour is the hour the trace started: links are counted there.
func traceHour(spans []zipkin.Span) time.Time {
	var start int64
	for i := range spans {
		if t := spans[i].StartTime(); t > 0 && (start == 0 || t < start) {
			start = t
		}
	}
	return time.UnixMicro(start).UTC().Truncate(time.Hour)
}

func claimPending(ctx context.Context, tx pgx.Tx, max int) (map[zipkin.TraceID]bool, error) {
	rows, err := tx.Query(ctx, `DELETE FROM link_pending WHERE (trace_id_low, trace_id_high) IN (
		SELECT trace_id_low, trace_id_high FROM link_pending LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING trace_id_low, trace_id_high`, max)
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	ids := map[zipkin.TraceID]bool{}
	var low, high int64
	_, err = pgx.ForEachRow(rows, []any{&low, &high}, func() error {
		ids[zipkin.TraceID{High: uint64(high), Low: uint64(low)}] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	return ids, nil
}

func linksOf(ctx context.Context, tx pgx.Tx, lows []int64, want map[zipkin.TraceID]bool) ([]traceLinks, error) {
	rows, err := tx.Query(ctx, `SELECT trace_id_low, trace_id_high, hour, links FROM trace_links WHERE trace_id_low = ANY($1)`, lows)
	if err != nil {
		return nil, fmt.Errorf("read trace links: %w", err)
	}
	var out []traceLinks
	var low, high int64
	var hour time.Time
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&low, &high, &hour, &raw}, func() error {
		id := zipkin.TraceID{High: uint64(high), Low: uint64(low)}
		if !want[id] {
			return nil
		}
		tl := traceLinks{id: id, hour: hour.UTC()}
		if err := json.Unmarshal(raw, &tl.links); err != nil {
			return fmt.Errorf("trace links of %s: %w", id, err)
		}
		out = append(out, tl)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read trace links: %w", err)
	}
	return out, nil
}

func replaceTraceLinks(ctx context.Context, tx pgx.Tx, ids map[zipkin.TraceID]bool, fresh []traceLinks) error {
	var lows, highs []int64
	for id := range ids {
		lows, highs = append(lows, int64(id.Low)), append(highs, int64(id.High))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM trace_links t USING unnest($1::bigint[], $2::bigint[]) AS d(low, high)
		WHERE t.trace_id_low = d.low AND t.trace_id_high = d.high`, lows, highs); err != nil {
		return fmt.Errorf("replace trace links: %w", err)
	}
	if len(fresh) == 0 {
		return nil
	}
	lows, highs = lows[:0], highs[:0]
	hours := make([]time.Time, 0, len(fresh))
	docs := make([]string, 0, len(fresh))
	for _, tl := range fresh {
		b, err := json.Marshal(tl.links)
		if err != nil {
			return fmt.Errorf("encode trace links: %w", err)
		}
		lows, highs = append(lows, int64(tl.id.Low)), append(highs, int64(tl.id.High))
		hours, docs = append(hours, tl.hour), append(docs, string(b))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO trace_links (trace_id_low, trace_id_high, hour, links)
		SELECT l, h, t, d::jsonb FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[]) AS u(l, h, t, d)`,
		lows, highs, hours, docs); err != nil {
		return fmt.Errorf("replace trace links: %w", err)
	}
	return nil
}

// applyDelta adds the change to the hourly totals in key order (one linker
// runs at a time, but the order keeps it deadlock-free if that changes).
func applyDelta(ctx context.Context, tx pgx.Tx, delta map[hourLink]*zipkin.DependencyLink) error {
	keys := make([]hourLink, 0, len(delta))
	for k, d := range delta {
		if d.CallCount != 0 || d.ErrorCount != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b hourLink) int {
		return cmp.Or(a.hour.Compare(b.hour), cmp.Compare(a.parent, b.parent), cmp.Compare(a.child, b.child))
	})
	hours := make([]time.Time, len(keys))
	parents, children := make([]string, len(keys)), make([]string, len(keys))
	calls, errs, pairs := make([]int64, len(keys)), make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		hours[i], parents[i], children[i] = k.hour, k.parent, k.child
		calls[i], errs[i], pairs[i] = delta[k].CallCount, delta[k].ErrorCount, nameKey(k.parent, k.child)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO dependency_links (hour, parent, child, calls, errors, pair_h)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
		ON CONFLICT (hour, pair_h) DO UPDATE
		SET calls = dependency_links.calls + excluded.calls, errors = dependency_links.errors + excluded.errors`,
		hours, parents, children, calls, errs, pairs); err != nil {
		return fmt.Errorf("update dependency links: %w", err)
	}
	return nil
}

// Dependencies sums the hourly links of traces that started in
// (endTs-lookback, endTs]. Links are bucketed by the hour their trace
// started, so the window is widened to whole hours at its start.
func (s *Store) Dependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]zipkin.DependencyLink, error) {
	from := endTs.Add(-lookback).UTC().Truncate(time.Hour)
	rows, err := s.pool.Query(ctx, `SELECT parent, child, sum(calls)::bigint, sum(errors)::bigint
		FROM dependency_links WHERE hour >= $1 AND hour <= $2
		GROUP BY parent, child HAVING sum(calls) > 0 ORDER BY parent, child`, from, endTs.UTC())
	if err != nil {
		return nil, fmt.Errorf("dependencies: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (zipkin.DependencyLink, error) {
		var l zipkin.DependencyLink
		return l, r.Scan(&l.Parent, &l.Child, &l.CallCount, &l.ErrorCount)
	})
	if err != nil {
		return nil, fmt.Errorf("dependencies: %w", err)
	}
	return links, nil
}
