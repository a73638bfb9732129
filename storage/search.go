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

// FindTraces returns whole traces, of the tenant ctx acts for, having a span that matches every
// criterion of q within [EndTs-Lookback, EndTs], the trace with the newest
// matching span first, at most q.Limit. With strict false, traces are
// grouped by the lower 64 bits of their ID.
//
// span_index rows are coarse — one per (segment, minute), with hashed
// names and terms — so they only nominate candidate traces. Rows are
// walked by their latest span start (ts_max), newest first; candidates are
// read whole (they are returned anyway) a few at a time and kept only if
// one of their spans matches q exactly, as Zipkin's rule "one span matches
// all criteria" demands. No unread row can hold a span newer than the
// ts_max of the last row read, so the walk stops as soon as Limit matches
// are at least that new: usually after reading about Limit traces.
func (s *Store) FindTraces(ctx context.Context, q zipkin.QueryRequest, strict bool) ([][]zipkin.Span, error) {
	return s.FindTracesMatching(ctx, q, strict, func(spans []zipkin.Span, from, to int64) (int64, bool) {
		return newestMatch(spans, q, from, to)
	})
}

// FindTracesMatching is FindTraces with another matcher, which decides
// whether a trace (its spans, parts merged) is an answer of a search over
// [from, to] (epoch microseconds), and if so the time it is ordered by,
// newest first: at most the start of its newest span in the window. q
// gives the window and the limit; its service, remote service, span name,
// annotation query and duration bounds only nominate candidates through
// the index, so each must be necessary for match to accept a trace (a
// TraceQL query's conjunctive equalities; none when it has none). Traces
// are walked newest first as in FindTraces; match decides exactly.
func (s *Store) FindTracesMatching(ctx context.Context, q zipkin.QueryRequest, strict bool,
	match func(spans []zipkin.Span, from, to int64) (at int64, ok bool)) ([][]zipkin.Span, error) {
	return s.FindTracesFiltered(ctx, q, strict, nil, match)
}

// FindTracesFiltered is FindTracesMatching with a prefilter, which names
// the traces that may match from their spans' columns (span_columns).
// When q names nothing the search index could look up, and the columns
// cover the window, the walk goes down the column blocks newest first
// instead of the search index, and reads whole only the traces pre names.
// pre must name every trace match could accept.
func (s *Store) FindTracesFiltered(ctx context.Context, q zipkin.QueryRequest, strict bool, pre Prefilter,
	match func(spans []zipkin.Span, from, to int64) (at int64, ok bool)) ([][]zipkin.Span, error) {
	tenant, ok, err := s.readTenant(ctx)
	if q.Limit <= 0 || !ok || err != nil {
		return nil, err
	}
	start, end := q.EndTs.Add(-q.Lookback), q.EndTs
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
	var either [][]int32
	for _, t := range q.AnnotationQuery {
		if k, old := termKey(t), legacyTermKey(t); k == old {
			keys = append(keys, k)
		} else {
			either = append(either, []int32{k, old})
		}
	}
	w := &walk{s: s, tenant: tenant, q: q, match: match, strict: strict, keys: keys, either: either,
		start: start, end: end, cursor: end, seen: map[zipkin.TraceID]bool{}, colRows: columnWalkRows}
	if pre != nil && s.cfg.Columns != nil && len(keys)+len(either) == 0 && q.MinDuration == 0 && q.MaxDuration == 0 {
		since, err := s.columnsSince(ctx)
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		if !start.Before(since) {
			w.pre = pre
		}
	}
	if err := w.run(ctx); err != nil {
		return nil, fmt.Errorf("find traces: %w", err)
	}
	out := make([][]zipkin.Span, 0, min(len(w.matches), q.Limit))
	for _, m := range w.matches[:min(len(w.matches), q.Limit)] {
		out = append(out, m.spans)
	}
	return out, nil
}

// walkScan is how many rows one step of the walk reads through the ts_max
// B-tree, checking keys per row. When a step finds too few rows with the
// keys, the keys are rare: the rest of the window is searched through the
// GIN index instead, which the planner cannot be trusted to pick alone (it
// chose bitmap scans of whole partitions for keys on every row).
const walkScan = 2000

type walk struct {
	s          *Store
	tenant     int16
	q          zipkin.QueryRequest
	match      func(spans []zipkin.Span, from, to int64) (int64, bool)
	strict     bool
	keys       []int32   // a row must hold every one
	either     [][]int32 // and one of each: a term's key and its key before migration 00015
	start, end time.Time
	cursor     time.Time // rows with ts_max <= cursor are unread
	rare       bool      // use the GIN index
	pre        Prefilter // walk the column blocks, not the index
	colRows    int       // blocks the column walk's next step reads
	seen       map[zipkin.TraceID]bool
	matches    []match
}

type match struct {
	at    int64 // start of the newest matching span
	spans []zipkin.Span
}

type candidate struct {
	id    zipkin.TraceID
	tsMax time.Time
}

func (w *walk) run(ctx context.Context) error {
	step := w.step
	if w.pre != nil {
		step = w.columnStep
	}
	for {
		cands, exhausted, err := step(ctx)
		if err != nil {
			return err
		}
		// Read candidates a few at a time, newest row first; stop once
		// Limit matches are at least as new as any unread row could hold.
		for i := 0; i < len(cands); {
			if w.done(cands[i].tsMax) {
				return nil
			}
			j := min(i+max(w.q.Limit, 4), len(cands))
			ids := make([]zipkin.TraceID, 0, j-i)
			for _, c := range cands[i:j] {
				ids = append(ids, c.id)
			}
			traces, err := w.s.Traces(ctx, ids, w.strict)
			if err != nil {
				return err
			}
			for _, spans := range traces {
				// A span reported in parts (a name in one message, its
				// service in another) is matched whole; the answer keeps
				// the parts, as Zipkin's does.
				whole := spans
				if hasParts(len(spans), func(i int) *zipkin.Span { return &spans[i] }) {
					whole = zipkin.MergeParts(spans)
				}
				if at, ok := w.match(whole, w.start.UnixMicro(), w.end.UnixMicro()); ok {
					w.matches = append(w.matches, match{at, spans})
				}
			}
			slices.SortStableFunc(w.matches, func(a, b match) int { return cmp.Compare(b.at, a.at) })
			i = j
		}
		if exhausted || w.done(w.cursor) {
			return nil
		}
	}
}

// done reports whether Limit matches are at least as new as a row whose
// latest span starts at tsMax.
func (w *walk) done(tsMax time.Time) bool {
	return len(w.matches) >= w.q.Limit && w.matches[w.q.Limit-1].at >= tsMax.UnixMicro()
}

// query is a step's SELECT: the next rows of the window, newest first,
// and the row limit it reads.
func (w *walk) query() (string, []any, int) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// ts bounds prune partitions: a row's spans start within a minute.
	where := []string{"tenant = " + arg(w.tenant), "ts > " + arg(w.start.Add(-indexBucket)), "ts <= " + arg(w.end),
		"ts_max >= " + arg(w.start), "ts_max <= " + arg(w.cursor)}
	// The key conditions: in the WHERE when the GIN index serves the step,
	// else computed per row read down the ts_max B-tree. Both GIN operators
	// combine in one index scan.
	var conds []string
	if len(w.keys) > 0 {
		conds = append(conds, "keys @> "+arg(w.keys))
	}
	for _, e := range w.either {
		conds = append(conds, "keys && "+arg(e))
	}
	hit := "true"
	if len(conds) > 0 {
		if w.rare {
			where = append(where, conds...)
		} else {
			hit = strings.Join(conds, " AND ")
		}
	}
	if w.q.MinDuration > 0 {
		where = append(where, "dur_max >= "+arg(w.q.MinDuration))
	}
	if w.q.MaxDuration > 0 {
		where = append(where, "dur_min <= "+arg(w.q.MaxDuration))
	}
	limit := walkScan
	if w.rare {
		limit = max(w.q.Limit*4, 100)
	}
	// A group row (indexgroup.go) comes with its keys and members, to
	// nominate those of its traces an ordinary row of theirs would have.
	query := `SELECT trace_id_low, trace_id_high, ts_max, ` + hit + `, CASE WHEN members <> '' THEN keys END, members FROM span_index WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY ts_max DESC LIMIT ` + arg(limit)
	return query, args, limit
}

// step reads the next rows of the window, newest first, and returns the
// traces they nominate (each once per search), and whether the window is
// exhausted.
func (w *walk) step(ctx context.Context) ([]candidate, bool, error) {
	query, args, limit := w.query()
	var rows pgx.Rows
	var err error
	var br pgx.BatchResults
	if w.rare {
		rows, err = w.s.pool.Query(ctx, query, args...)
	} else {
		br = w.s.pool.SendBatch(ctx, newestFirst(query, args))
		defer br.Close()
		rows, err = batchRows(br)
	}
	if err != nil {
		return nil, false, err
	}
	var low, high int64
	var tsMax time.Time
	var ok bool
	var union []int32
	var members []byte
	var cands []candidate
	nominate := func(id zipkin.TraceID) {
		if !w.strict {
			id.High = 0
		}
		if !w.seen[id] {
			w.seen[id] = true
			// A group row's traces take its ts_max: an upper bound of
			// their spans' starts, as a row's is, which keeps done's
			// reasoning about unread rows exact.
			cands = append(cands, candidate{id, tsMax})
		}
	}
	n, hits, oldest := 0, 0, w.cursor
	_, err = pgx.ForEachRow(rows, []any{&low, &high, &tsMax, &ok, &union, &members}, func() error {
		n++
		oldest = tsMax
		if !ok {
			return nil
		}
		hits++
		if len(members) == 0 {
			nominate(zipkin.TraceID{High: uint64(high), Low: uint64(low)})
			return nil
		}
		ms, err := parseMembers(members, len(union))
		if err != nil {
			return err
		}
		for i := range ms {
			if w.nominates(union, &ms[i]) {
				nominate(ms[i].id)
			}
		}
		return nil
	})
	if err == nil && br != nil {
		err = br.Close() // the COMMIT
	}
	if err != nil {
		return nil, false, err
	}
	if n < limit {
		return cands, true, nil
	}
	w.advance(oldest)
	if !w.rare && hits < max(w.q.Limit, 10) {
		w.rare = true
	}
	return cands, false, nil
}

// nominates reports whether a group row's trace m (union: the row's keys)
// passes what the walk's query asks of a row: every key, one of each
// either, and the duration bounds.
func (w *walk) nominates(union []int32, m *groupMember) bool {
	has := func(k int32) bool {
		p, ok := slices.BinarySearch(union, k)
		if !ok {
			return false
		}
		_, ok = slices.BinarySearch(m.keys, uint32(p))
		return ok
	}
	for _, k := range w.keys {
		if !has(k) {
			return false
		}
	}
	for _, e := range w.either {
		if !slices.ContainsFunc(e, has) {
			return false
		}
	}
	if w.q.MinDuration > 0 && (!m.hasDur || m.durMax < w.q.MinDuration) ||
		w.q.MaxDuration > 0 && (!m.hasDur || m.durMin > w.q.MaxDuration) {
		return false
	}
	return true
}

// advance moves the cursor to the oldest row a full step read. Rows at
// exactly the cursor were read already, except those cut off by the
// limit; reading them again is harmless (seen). A whole step at one
// instant steps past it rather than loop.
func (w *walk) advance(oldest time.Time) {
	if oldest.Equal(w.cursor) {
		oldest = oldest.Add(-time.Microsecond)
	}
	w.cursor = oldest
}

// newestFirst wraps a walk step's query so that PostgreSQL runs it as the
// walk is designed: down the ts_max B-trees (a Merge Append of backward
// index scans), stopping at the LIMIT. Left to its estimates the planner
// picks that plan except while a partition's statistics are stale — after
// a burst of spans, until autovacuum's next ANALYZE (a minute or more) —
// when it estimates a few hundred rows in the window and reads every row
// of it (a bitmap scan and a top-N sort: 50,000 rows instead of 2,000,
// 200–270 ms instead of 30, measured after a 500k-span load; each pool
// connection does it for its first five runs, until PostgreSQL switches
// it to the generic plan). Disabling sorts for this one transaction
// leaves the ordered scans as the only plan without one; the four
// statements go in one round trip.
func newestFirst(query string, args []any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("BEGIN READ ONLY")
	b.Queue("SET LOCAL enable_sort = off")
	b.Queue(query, args...)
	b.Queue("COMMIT")
	return b
}

// batchRows passes newestFirst's BEGIN and SET and returns the query's
// rows; the caller reads them, then closes br for the COMMIT.
func batchRows(br pgx.BatchResults) (pgx.Rows, error) {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	return br.Query()
}

// newestMatch reports the start of the newest span of a trace that matches
// every criterion of q and starts in [from, to] (µs).
func newestMatch(spans []zipkin.Span, q zipkin.QueryRequest, from, to int64) (int64, bool) {
	if q.MinTraceDuration > 0 || q.MaxTraceDuration > 0 {
		d := zipkin.TraceDuration(spans)
		if d < q.MinTraceDuration || q.MaxTraceDuration > 0 && d > q.MaxTraceDuration {
			return 0, false
		}
	}
	best, ok := int64(0), false
	for i := range spans {
		sp := &spans[i]
		if at := sp.StartTime(); at >= from && at <= to && (!ok || at > best) && spanMatches(sp, q) {
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

// hasParts reports whether two of n spans (span(i) is the i-th) are pieces
// of one span (same ID and shared flag), which zipkin.MergeParts would
// combine: the common case, none, costs a sort of the IDs, with no copy
// of the spans and no merge.
func hasParts(n int, span func(i int) *zipkin.Span) bool {
	if n < 2 {
		return false
	}
	type part struct {
		id     zipkin.SpanID
		shared bool
	}
	ps := make([]part, n)
	for i := range ps {
		sp := span(i)
		ps[i] = part{sp.ID, sp.Shared}
	}
	slices.SortFunc(ps, func(a, b part) int {
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(btoi(a.shared), btoi(b.shared))
	})
	for i := 1; i < len(ps); i++ {
		if ps[i] == ps[i-1] {
			return true
		}
	}
	return false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
