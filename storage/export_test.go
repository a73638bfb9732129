package storage

import (
	"context"
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
	w, err := s.prepare(spans, true)
	if err != nil {
		return err
	}
	w.beforeTenants = true
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return w.write(ctx, tx, defaultTenantID) })
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
