package storage

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"
	"github.com/pressly/goose/v3"

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

// PackInPagesOf makes Pack read a day rows at a time (packPage otherwise).
func (s *Store) PackInPagesOf(rows int) { s.packRows = rows }

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

// LayoutSizes is what spans' payload takes in the segment layouts
// BenchmarkSegmentLayouts compares, in bytes: one zstd frame per trace as
// segments store them, with the shipped dictionary and with one learned as
// maintenance learns it (from train's traces); and frames of k traces
// (sorted by trace ID, as a day's rewrite would group them) for each k,
// with no dictionary at zstd's default level and with the learned one at
// the writer's level. It also returns the mean time to decode one frame of
// k traces: what a trace-by-ID read would pay for it.
func LayoutSizes(train, spans []zipkin.Span, ks []int) (sizes map[string]int, decode map[int]time.Duration, err error) {
	traces := func(spans []zipkin.Span) [][]byte {
		byTrace := map[zipkin.TraceID][]byte{}
		var ids []zipkin.TraceID
		var one []byte
		for i := range spans {
			if one, err = spans[i].MarshalCanonical(one[:0]); err != nil {
				return nil
			}
			if _, ok := byTrace[spans[i].TraceID]; !ok {
				ids = append(ids, spans[i].TraceID)
			}
			byTrace[spans[i].TraceID] = append(byTrace[spans[i].TraceID], one...)
		}
		slices.SortFunc(ids, func(a, b zipkin.TraceID) int { return cmp.Or(cmp.Compare(a.Low, b.Low), cmp.Compare(a.High, b.High)) })
		out := make([][]byte, len(ids))
		for i, id := range ids {
			out[i] = byTrace[id]
		}
		return out
	}
	samples, all := traces(train), traces(spans)
	if err != nil {
		return nil, nil, err
	}
	var total int
	for i, s := range samples {
		if total += len(s); total > dictSampleBytes {
			samples = samples[:i]
			break
		}
	}
	learned, err := dict.BuildZstdDict(samples, dict.Options{MaxDictSize: dictMaxSize, HashBytes: 6, ZstdLevel: zstd.SpeedFastest})
	if err != nil {
		return nil, nil, err
	}
	shipped, _, err := codec()
	if err != nil {
		return nil, nil, err
	}
	withLearned, err := newEncoder(learned)
	if err != nil {
		return nil, nil, err
	}
	plain, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, nil, err
	}
	defer dec.Close()
	sizes = map[string]int{
		"per-trace-shipped": compressedSize(shipped, all),
		"per-trace-learned": compressedSize(withLearned, all),
	}
	decode = map[int]time.Duration{}
	for _, k := range ks {
		var blocks [][]byte
		for i := 0; i < len(all); i += k {
			blocks = append(blocks, slices.Concat(all[i:min(i+k, len(all))]...))
		}
		sizes["blocks-"+strconv.Itoa(k)+"-plain"] = compressedSize(plain, blocks)
		sizes["blocks-"+strconv.Itoa(k)+"-learned"] = compressedSize(withLearned, blocks)
		var frames [][]byte
		for _, b := range blocks {
			frames = append(frames, plain.EncodeAll(b, nil))
		}
		began := time.Now()
		var out []byte
		for _, f := range frames {
			if out, err = dec.DecodeAll(f, out[:0]); err != nil {
				return nil, nil, err
			}
		}
		decode[k] = time.Since(began) / time.Duration(len(frames))
	}
	return sizes, decode, nil
}

// PackAsBeforeDirectories turns the blocks packed with directories into
// the layout of days packed before migration 21: each entry a member row
// in segments, its data a reference into the block (appendRef), and the
// block without lows and dir. It returns how many rows it wrote.
func (s *Store) PackAsBeforeDirectories(ctx context.Context) (int, error) {
	entries, err := packedEntries(ctx, s.pool, "true", nil, func(int16, *dirEntry) bool { return true })
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, e := range entries {
		ref := appendRef(nil, e.block.low, e.block.uid, e.off, e.len)
		b.Queue(`INSERT INTO segments (trace_id_low, trace_id_high, tenant, ts, seg_uid, span_count, dict, data) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)`,
			int64(e.id.Low), int64(e.id.High), e.tenant, e.ts, int64(xxhash.Sum64(ref)), e.spans, ref)
	}
	b.Queue(`UPDATE segment_blocks SET lows = NULL, dir = NULL`)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return len(entries), nil
}

// MigrateDownTo undoes migrations down to version: zipq itself never
// does, an operator going back to an older binary would.
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	return s.migrate(ctx, func(p *goose.Provider) ([]*goose.MigrationResult, error) { return p.DownTo(ctx, version) })
}

// ByIDQuery is the query finding the blocks that list a trace (block.go):
// TestPackedTwins checks its generic plan.
var ByIDQuery = byIDQueryMany
