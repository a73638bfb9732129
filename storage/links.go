package storage

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// LinkBatch is how many marked traces one linker round takes.
const LinkBatch = 1000

// Link brings dependency links up to date for up to limit marked traces and
// returns how many it took. Each trace is linked whole, from every span
// stored for it, and its previous contribution to the hourly totals is
// replaced, so late spans change the graph instead of double counting. A
// trace it finds stored as several segments is queued for the compactor
// (Compact). One linker runs at a time per schema (an advisory lock);
// others return 0.
//
// A writer that marks a trace while the linker holds its mark waits for
// the linker's commit and then marks it again: its spans are linked in
// the next round, never lost.
func (s *Store) Link(ctx context.Context, limit int) (int, error) {
	n := 0
	added := map[int16][]zipkin.DependencyLink{}
	err := s.job(ctx, "link", func(tx pgx.Tx) error {
		clear(added)
		n = 0
		byTenant, err := claimPending(ctx, tx, limit)
		if err != nil {
			return err
		}
		for tenant, ids := range byTenant {
			n += len(ids)
			delta, err := linkTenant(ctx, tx, tenant, ids)
			if err != nil {
				return err
			}
			added[tenant] = addedLinks(delta)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("link dependencies: %w", err)
	}
	for id, links := range added {
		if s.observer == nil || len(links) == 0 {
			continue
		}
		name, err := s.tenantName(ctx, id)
		if err != nil {
			return n, fmt.Errorf("link dependencies: %w", err)
		}
		s.observer.LinksAdded(name, links)
	}
	return n, nil
}

// linkTenant links one tenant's claimed traces and returns what it changed
// in the tenant's hourly totals.
func linkTenant(ctx context.Context, tx pgx.Tx, tenant int16, ids map[zipkin.TraceID]*mark) (map[hourEdge]*edgeDelta, error) {
	lows := make([]int64, 0, len(ids))
	for id := range ids {
		lows = append(lows, int64(id.Low))
	}
	slices.Sort(lows)
	lows = slices.Compact(lows)
	// A trace still made of the one segment its mark was written for
	// is linked from the links the writer computed; the others are
	// read back whole, and queued for compaction.
	known, readLows, packed, err := knownLinks(ctx, tx, tenant, lows, ids)
	if err != nil {
		return nil, err
	}
	builders, err := readSegments(ctx, tx, tenant, readLows, func(id zipkin.TraceID) (zipkin.TraceID, bool) {
		_, ok := known[id]
		return id, ids[id] != nil && !ok
	})
	if err != nil {
		return nil, fmt.Errorf("read spans: %w", err)
	}
	if err := queueCompaction(ctx, tx, tenant, builders); err != nil {
		return nil, err
	}
	old, err := linksOf(ctx, tx, tenant, lows, ids, packed)
	if err != nil {
		return nil, err
	}
	delta := map[hourEdge]*edgeDelta{}
	oldHour := make(map[zipkin.TraceID]time.Time, len(old))
	for _, tl := range old {
		addDelta(delta, tl, -1)
		oldHour[tl.id] = tl.hour
	}
	fresh := make([]traceLinks, 0, len(builders)+len(known))
	for id, b := range builders {
		fresh = append(fresh, linkTrace(id, b.result(), linkHour(b.stored())))
	}
	for _, tl := range known {
		fresh = append(fresh, tl)
	}
	// A packed trace stays counted in the hour it was, and keeps a row
	// even with no edges: its member's links record (pack.go) is then
	// never read again, and the row, like the record, expires with the
	// member's day.
	fresh = slices.DeleteFunc(fresh, func(tl traceLinks) bool { return len(tl.edges) == 0 && !packed[tl.id] })
	for i, tl := range fresh {
		if h, ok := oldHour[tl.id]; ok && packed[tl.id] {
			fresh[i].hour = h
		}
	}
	for _, tl := range fresh {
		addDelta(delta, tl, 1)
	}
	if err := replaceTraceLinks(ctx, tx, tenant, ids, fresh); err != nil {
		return nil, err
	}
	return delta, applyDelta(ctx, tx, tenant, delta)
}

// addedLinks is what a round's delta added to each edge, over all hours:
// the edges whose calls or errors grew, by as much.
func addedLinks(delta map[hourEdge]*edgeDelta) []zipkin.DependencyLink {
	type pair struct{ parent, child string }
	sum := map[int64]*zipkin.DependencyLink{}
	names := map[int64]pair{}
	for k, d := range delta {
		l := sum[k.pair]
		if l == nil {
			l = &zipkin.DependencyLink{}
			sum[k.pair] = l
		}
		l.CallCount += d.calls
		l.ErrorCount += d.errors
		if d.parent != "" || d.child != "" {
			names[k.pair] = pair{d.parent, d.child}
		}
	}
	var out []zipkin.DependencyLink
	for p, l := range sum {
		n, named := names[p]
		if !named || l.CallCount <= 0 && l.ErrorCount <= 0 {
			continue
		}
		out = append(out, zipkin.DependencyLink{Parent: n.parent, Child: n.child, CallCount: max(l.CallCount, 0), ErrorCount: max(l.ErrorCount, 0)})
	}
	slices.SortFunc(out, func(a, b zipkin.DependencyLink) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out
}

// RunLinker links marked traces every LinkInterval, and back to back while
// a backlog remains, until ctx ends. Failures are logged and retried.
func (s *Store) RunLinker(ctx context.Context) error {
	return s.every(ctx, s.cfg.LinkInterval, "dependency linking", func(ctx context.Context) (bool, error) {
		n, err := s.Link(ctx, LinkBatch)
		return n == LinkBatch, err
	})
}

// traceLinks is what one trace contributes to dependency_links.
type traceLinks struct {
	id    zipkin.TraceID
	hour  time.Time
	edges []edge
}

// linkTrace is a whole trace's contribution: Zipkin's linker over its
// spans, counted in hour (linkHour).
func linkTrace(id zipkin.TraceID, spans []zipkin.Span, hour time.Time) traceLinks {
	tl := traceLinks{id: id, hour: hour}
	for _, l := range zipkin.Link(spans) {
		parent, child := pgText(l.Parent), pgText(l.Child) // stored as text: no NUL
		tl.edges = append(tl.edges, edge{pair: nameKey(parent, child), parent: parent, child: child,
			calls: l.CallCount, errors: l.ErrorCount})
	}
	return tl
}

type hourEdge struct {
	hour time.Time
	pair int64
}

type edgeDelta struct {
	parent, child string // "" when the edge is only being subtracted
	calls, errors int64
}

func addDelta(delta map[hourEdge]*edgeDelta, tl traceLinks, sign int64) {
	for _, e := range tl.edges {
		k := hourEdge{tl.hour, e.pair}
		d := delta[k]
		if d == nil {
			d = &edgeDelta{}
			delta[k] = d
		}
		if e.parent != "" || e.child != "" {
			d.parent, d.child = e.parent, e.child
		}
		d.calls += sign * min(e.calls, math.MaxInt32)
		d.errors += sign * min(e.errors, math.MaxInt32)
	}
}

// mark is a claimed link_pending row: the links of the segment its write
// stored, when it carried them.
type mark struct {
	hour  time.Time
	edges []byte // encodeNamedEdges; nil: read the trace
}

// claimPending claims marked traces, by tenant.
func claimPending(ctx context.Context, tx pgx.Tx, limit int) (map[int16]map[zipkin.TraceID]*mark, error) {
	byTenant := map[int16]map[zipkin.TraceID]*mark{}
	var hour *time.Time
	var edges []byte
	err := claim(ctx, tx, "link_pending", []string{"hour", "edges"}, limit, []any{&hour, &edges}, func(tenant int16, id zipkin.TraceID) {
		ids := byTenant[tenant]
		if ids == nil {
			ids = map[zipkin.TraceID]*mark{}
			byTenant[tenant] = ids
		}
		m := &mark{edges: slices.Clone(edges)} // the scan target is reused row after row
		if hour != nil {
			m.hour = hour.UTC()
		} else {
			m.edges = nil
		}
		ids[id] = m
	})
	return byTenant, err
}

// isMember is SQL true for a segments row that is a block member (its
// data a reference, block.go: a few dozen bytes, starting with a 0 byte).
// octet_length reads a stored value's header only.
const isMember = `(octet_length(data) < 64 AND get_byte(data, 0) = 0)`

// knownLinks returns the links of the claimed traces that consist of one
// segment and whose mark carries that segment's links, the lower halves
// of the trace ids to read back, and which traces are packed (have a
// block member).
func knownLinks(ctx context.Context, tx pgx.Tx, tenant int16, lows []int64, ids map[zipkin.TraceID]*mark) (map[zipkin.TraceID]traceLinks, []int64, map[zipkin.TraceID]bool, error) {
	segments := map[zipkin.TraceID]int{}
	packed := map[zipkin.TraceID]bool{}
	var low, high int64
	var n int
	var member bool
	entries, err := rowsAndEntries(ctx, tx, tenant, lows, `SELECT trace_id_low, trace_id_high, count(*), bool_or(`+isMember+`) FROM segments
		WHERE trace_id_low = ANY($2) AND tenant = $1 GROUP BY 1, 2`, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&low, &high, &n, &member}, func() error {
			id := zipkin.TraceID{High: uint64(high), Low: uint64(low)}
			segments[id] = n
			if member {
				packed[id] = true
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("count segments: %w", err)
	}
	for _, e := range entries {
		segments[e.id]++
		packed[e.id] = true
	}
	known := map[zipkin.TraceID]traceLinks{}
	var read []int64
	for id, m := range ids {
		if segments[id] == 1 && m.edges != nil {
			edges, err := decodeNamedEdges(m.edges)
			if err == nil {
				known[id] = traceLinks{id: id, hour: m.hour, edges: edges}
				continue
			}
		}
		read = append(read, int64(id.Low))
	}
	slices.Sort(read)
	return known, slices.Compact(read), packed, nil
}

// linksOf is what the wanted traces contribute now: their trace_links
// rows, and for a packed trace without one, the links record its member
// carries (pack.go moved the row there). Once a packed trace is relinked
// it has a row again (linkTenant), which is read first, so a record is
// read at most once.
func linksOf(ctx context.Context, tx pgx.Tx, tenant int16, lows []int64, want map[zipkin.TraceID]*mark, packed map[zipkin.TraceID]bool) ([]traceLinks, error) {
	rows, err := tx.Query(ctx, `SELECT trace_id_low, trace_id_high, hour, edges FROM trace_links
		WHERE trace_id_low = ANY($1) AND tenant = $2`, lows, tenant)
	if err != nil {
		return nil, fmt.Errorf("read trace links: %w", err)
	}
	var out []traceLinks
	has := map[zipkin.TraceID]bool{}
	var low, high int64
	var hour time.Time
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&low, &high, &hour, &raw}, func() error {
		id := zipkin.TraceID{High: uint64(high), Low: uint64(low)}
		if want[id] == nil {
			return nil
		}
		tl := traceLinks{id: id, hour: hour.UTC()}
		var err error
		if tl.edges, err = decodeEdges(raw); err != nil {
			return fmt.Errorf("trace links of %s: %w", id, err)
		}
		has[id] = true
		out = append(out, tl)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read trace links: %w", err)
	}
	carried := map[zipkin.TraceID]bool{}
	for id := range packed {
		if want[id] != nil && !has[id] {
			carried[id] = true
		}
	}
	if len(carried) == 0 {
		return out, nil
	}
	records, err := packedLinks(ctx, tx, tenant, carried)
	if err != nil {
		return nil, fmt.Errorf("read packed trace links: %w", err)
	}
	return append(out, records...), nil
}

// packedLinks reads the links records that the block members of tenant's
// traces ids carry. Another trace sharing an ID's lower half is skipped:
// its record is not the linker's to read.
func packedLinks(ctx context.Context, tx pgx.Tx, tenant int16, ids map[zipkin.TraceID]bool) ([]traceLinks, error) {
	lows := make([]int64, 0, len(ids))
	for id := range ids {
		lows = append(lows, int64(id.Low))
	}
	var ms members
	byID := map[zipkin.TraceID]*traceLinks{}
	record := func(id zipkin.TraceID) func([]byte) error {
		return func(rec []byte) error {
			hour, edges, err := decodeLinksRecord(rec)
			if err != nil {
				return fmt.Errorf("%w: trace %s: %w", errCorruptSegment, id, err)
			}
			// Packing moves a trace's row once, into one entry; should
			// two ever carry one, the later hour is the one counted last.
			if tl := byID[id]; tl == nil || hour.After(tl.hour) {
				byID[id] = &traceLinks{id: id, hour: hour, edges: edges}
			}
			return nil
		}
	}
	// Members with rows (days packed before migration 21), then entries.
	var r segmentRow
	entries, err := rowsAndEntries(ctx, tx, tenant, lows, `SELECT trace_id_low, trace_id_high, ts, data FROM segments
		WHERE trace_id_low = ANY($2) AND tenant = $1 AND `+isMember, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&r.low, &r.high, &r.ts, &r.data}, func() error {
			id := zipkin.TraceID{High: uint64(r.high), Low: uint64(r.low)}
			if !ids[id] {
				return nil
			}
			return ms.add(tenant, r.ts, r.data, nil, record(id))
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range entries {
		if e := &entries[i]; ids[e.id] {
			ms = append(ms, e.member(nil, record(e.id)))
		}
	}
	if err := ms.read(ctx, tx); err != nil {
		return nil, err
	}
	out := make([]traceLinks, 0, len(byID))
	for _, tl := range byID {
		out = append(out, *tl)
	}
	return out, nil
}

func replaceTraceLinks(ctx context.Context, tx pgx.Tx, tenant int16, ids map[zipkin.TraceID]*mark, fresh []traceLinks) error {
	var lows, highs []int64
	for id := range ids {
		lows, highs = append(lows, int64(id.Low)), append(highs, int64(id.High))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM trace_links t USING unnest($1::bigint[], $2::bigint[]) AS d(low, high)
		WHERE t.trace_id_low = d.low AND t.trace_id_high = d.high AND t.tenant = $3`, lows, highs, tenant); err != nil {
		return fmt.Errorf("replace trace links: %w", err)
	}
	if len(fresh) == 0 {
		return nil
	}
	lows, highs = lows[:0], highs[:0]
	hours := make([]time.Time, 0, len(fresh))
	docs := make([][]byte, 0, len(fresh))
	for _, tl := range fresh {
		lows, highs = append(lows, int64(tl.id.Low)), append(highs, int64(tl.id.High))
		hours, docs = append(hours, tl.hour), append(docs, encodeEdges(tl.edges))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO trace_links (trace_id_low, trace_id_high, hour, edges, tenant)
		SELECT u.*, $5::smallint FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bytea[]) AS u`,
		lows, highs, hours, docs, tenant); err != nil {
		return fmt.Errorf("replace trace links: %w", err)
	}
	return nil
}

// applyDelta adds the change to the hourly totals in key order (one linker
// runs at a time, but the order keeps it deadlock-free if that changes).
// An edge this round only subtracts from (a trace lost it) exists already,
// so it is updated by key; the others are upserted with their names.
func applyDelta(ctx context.Context, tx pgx.Tx, tenant int16, delta map[hourEdge]*edgeDelta) error {
	keys := make([]hourEdge, 0, len(delta))
	for k, d := range delta {
		if d.calls != 0 || d.errors != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b hourEdge) int { return cmp.Or(a.hour.Compare(b.hour), cmp.Compare(a.pair, b.pair)) })
	var up, sub struct {
		hours              []time.Time
		parents, children  []string
		pairs, calls, errs []int64
	}
	for _, k := range keys {
		d := delta[k]
		t := &up
		if d.parent == "" && d.child == "" {
			t = &sub
		}
		t.hours, t.pairs, t.calls, t.errs = append(t.hours, k.hour), append(t.pairs, k.pair), append(t.calls, d.calls), append(t.errs, d.errors)
		t.parents, t.children = append(t.parents, d.parent), append(t.children, d.child)
	}
	b := &pgx.Batch{}
	if len(sub.pairs) > 0 {
		b.Queue(`UPDATE dependency_links l SET calls = l.calls + d.calls, errors = l.errors + d.errors
			FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(hour, pair, calls, errors)
			WHERE l.tenant = $5 AND l.hour = d.hour AND l.pair_h = d.pair`, sub.hours, sub.pairs, sub.calls, sub.errs, tenant)
	}
	if len(up.pairs) > 0 {
		b.Queue(`INSERT INTO dependency_links (hour, parent, child, calls, errors, pair_h, tenant)
			SELECT u.*, $7::smallint FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u
			ON CONFLICT (tenant, hour, pair_h) DO UPDATE
			SET calls = dependency_links.calls + excluded.calls, errors = dependency_links.errors + excluded.errors`,
			up.hours, up.parents, up.children, up.calls, up.errs, up.pairs, tenant)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update dependency links: %w", err)
	}
	return nil
}

// Dependencies sums the hourly links, of the tenant ctx acts for, of traces that started in
// (endTs-lookback, endTs]. Links are bucketed by the hour their trace
// started, so the window is widened to whole hours at its start.
func (s *Store) Dependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]zipkin.DependencyLink, error) {
	tenant, ok, err := s.readTenant(ctx)
	if err != nil || !ok {
		return []zipkin.DependencyLink{}, err
	}
	from := endTs.Add(-lookback).UTC().Truncate(time.Hour)
	rows, err := s.pool.Query(ctx, `SELECT parent, child, sum(calls)::bigint, sum(errors)::bigint
		FROM dependency_links WHERE tenant = $3 AND hour >= $1 AND hour <= $2
		GROUP BY parent, child HAVING sum(calls) > 0 ORDER BY parent, child`, from, endTs.UTC(), tenant)
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
