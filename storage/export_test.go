package storage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// WalkPlan is PostgreSQL's plan for the first step of a keyless search of
// [start, end]: as FindTraces runs it (asStep), or as a plain query.
func (s *Store) WalkPlan(ctx context.Context, start, end time.Time, asStep bool) (string, error) {
	w := &walk{s: s, q: zipkin.QueryRequest{Limit: 10}, start: start, end: end, cursor: end}
	query, args, _ := w.query()
	var rows pgx.Rows
	var err error
	if asStep {
		br := s.pool.SendBatch(ctx, newestFirst("EXPLAIN "+query, args))
		defer br.Close()
		rows, err = batchRows(br)
	} else {
		rows, err = s.pool.Query(ctx, "EXPLAIN "+query, args...)
	}
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// WriteBeforeTenants writes spans as the writer did before migration 11
// (no tenant columns; span_stats' text tenant gets the number's text): to
// fill a database at version 10 with what that version's writer stored.
func (s *Store) WriteBeforeTenants(ctx context.Context, spans []zipkin.Span) error {
	return s.writeUnmerged(ctx, spans, true)
}

// WriteBeforeBatches writes spans as the writer did before migration 18,
// which still does during a rolling upgrade: what they count as one
// span_stats row per cell, not merged, instead of a span_stats_batches row.
func (s *Store) WriteBeforeBatches(ctx context.Context, spans []zipkin.Span) error {
	return s.writeUnmerged(ctx, spans, false)
}

func (s *Store) writeUnmerged(ctx context.Context, spans []zipkin.Span, beforeTenants bool) error {
	w, err := s.prepare(spans, true)
	if err != nil {
		return err
	}
	t := statTally{}
	for i, seg := range w.segs {
		t.add(w.merged[i], w.arrival, int64(len(seg.data)))
	}
	cells := t.rows(time.Minute)
	clear(cells[2].([]bool)) // not merged
	w.stats, w.uncounted, w.beforeTenants = nil, true, beforeTenants
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := w.write(ctx, tx, defaultTenantID); err != nil {
			return err
		}
		cols := strings.Fields(`ts res merged cell_h service service_h name kind remote calls errors dur_sum bytes sketch
			slow_trace_high slow_trace_low slow_span slow_us slow_at err_trace_high err_trace_low err_span err_us err_at`)
		all := strings.Join(cols, ", ")
		if beforeTenants { // nor bytes (migration 12)
			cols = slices.DeleteFunc(cols, func(c string) bool { return c == "bytes" })
		}
		_, err := tx.Exec(ctx, `INSERT INTO span_stats (tenant, `+strings.Join(cols, ", ")+`) SELECT $1::smallint, `+strings.Join(cols, ", ")+`
			FROM unnest($2::timestamptz[], $3::int[], $4::bool[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::smallint[], $10::text[],
			$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bytea[],
			$16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::timestamptz[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[], $25::timestamptz[])
			AS u(`+all+`)`, append([]any{defaultTenantID}, cells...)...)
		return err
	})
}

// ReadWithoutStrips makes Stats read services' totals from span_stats
// alone, as before strips: the oracle the strips' reads are tested against.
func (s *Store) ReadWithoutStrips() { s.noStrips = true }

// ForgetDicts makes the process's decoder forget every learned dictionary,
// as a process started before they were trained.
func ForgetDicts() {
	dictionaries.Lock()
	defer dictionaries.Unlock()
	dictionaries.known = nil
	learnedDecoder.Store(nil)
}

// FoldValues sets whether key=value terms get folded keys (termKey) or
// whole-term ones (legacyTermKey), as rows written before migration 00015
// have; it returns the undo. Not for parallel tests.
func FoldValues(on bool) (undo func()) {
	was := foldValues
	foldValues = on
	return func() { foldValues = was }
}

// TermKey is termKey, for tests that need two values sharing a key.
func TermKey(t string) int32 { return termKey(t) }

// StripCacheUse is the cache's strips and their estimated bytes.
func (s *Store) StripCacheUse() (strips int, bytes int64) {
	if s.strips == nil {
		return 0, 0
	}
	s.strips.mu.Lock()
	defer s.strips.mu.Unlock()
	return len(s.strips.m), s.strips.used
}
