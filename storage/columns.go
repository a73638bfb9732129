package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// ColumnEncoder encodes the spans of a block as named sections for scans
// (Config.Columns; ingest.SpanColumns): traces[i] is the spans of one
// trace, parts merged. Storage keeps the sections as they are and hands a
// Prefilter back the ones it names.
type ColumnEncoder func(traces [][]zipkin.Span) (names []string, sections [][]byte, err error)

// A Prefilter reads a block's sections (nil: the block has none of that
// name) and names the traces that may hold an answer (traceql.Prefilter).
type Prefilter interface {
	Columns() []string
	Traces(spans int, sections [][]byte) ([][16]byte, error)
}

// columnBlock is a span_columns row: the spans of one write (or one
// compaction) whose start, dated as stored, falls in one hour.
type columnBlock struct {
	low       int64 // its first trace's: where Citus would place it
	ts, tsMax int64 // µs
	uid       int64
	spans     int32
	names     []string
	ends      []int32
	data      []byte
}

// columnHour is the time span of a block's start times, which bounds how
// far before a search window a block can begin and still hold a span in it.
const columnHour = time.Hour

// columnBlocks encodes traces (each one trace's spans, in start order) as
// blocks, one per hour of start time; none without an encoder.
func columnBlocks(enc ColumnEncoder, traces [][]canonicalSpan, arrival int64) ([]columnBlock, error) {
	if enc == nil {
		return nil, nil
	}
	// A block's parts (one trace's spans each) and the bounds of their
	// start times, dated as stored.
	type hourBlock struct {
		parts     [][]zipkin.Span
		ts, tsMax int64
	}
	byHour := map[int64]*hourBlock{}
	for _, tr := range traces {
		var cur *[]zipkin.Span
		curHour := int64(-1)
		for _, cs := range tr {
			at := storedAt(cs.start, arrival)
			h := at / columnHour.Microseconds()
			hb := byHour[h]
			if hb == nil {
				hb = &hourBlock{ts: at, tsMax: at}
				byHour[h] = hb
			}
			hb.ts, hb.tsMax = min(hb.ts, at), max(hb.tsMax, at)
			if cur == nil || curHour != h {
				hb.parts = append(hb.parts, nil)
				cur, curHour = &hb.parts[len(hb.parts)-1], h
			}
			*cur = append(*cur, *cs.span)
		}
	}
	var out []columnBlock
	for _, h := range slices.Sorted(maps.Keys(byHour)) {
		hb := byHour[h]
		groups := hb.parts
		b := columnBlock{low: int64(groups[0][0].TraceID.Low), ts: hb.ts, tsMax: hb.tsMax}
		for _, g := range groups {
			b.spans += int32(len(g))
		}
		names, sections, err := enc(groups)
		if err != nil {
			return nil, fmt.Errorf("span columns: %w", err)
		}
		if len(names) == 0 {
			continue // no trace of it has a TraceQL model: none can match
		}
		b.names, b.ends = names, make([]int32, len(names))
		for i, sec := range sections {
			b.data = append(b.data, sec...)
			b.ends[i] = int32(len(b.data))
		}
		b.uid = int64(xxhash.Sum64(b.data))
		out = append(out, b)
	}
	return out, nil
}

// insertColumns stores a block; a redelivered write's identical block is
// there already.
const insertColumns = `INSERT INTO span_columns (trace_id_low, tenant, ts, ts_max, block_uid, spans, names, ends, data)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`

func queueColumns(b *pgx.Batch, blocks []columnBlock, tenant int16) {
	for _, c := range blocks {
		b.Queue(insertColumns, c.low, tenant, time.UnixMicro(c.ts).UTC(), time.UnixMicro(c.tsMax).UTC(), c.uid, c.spans, c.names, c.ends, c.data)
	}
}

// columnsSince is when the span columns start to cover every stored span:
// after the spans stored before they existed (span_columns_since), and
// after the packed days, whose columns packing drops (pack.go). Scans of
// windows starting before it read whole traces as before. Asked at each
// search: a day may have been packed since the last.
func (s *Store) columnsSince(ctx context.Context) (time.Time, error) {
	var since *time.Time // NULL: every span has columns
	if err := s.pool.QueryRow(ctx, `SELECT greatest((SELECT CASE WHEN since > '-infinity' THEN since END FROM span_columns_since),
		(SELECT (max(day) + 1)::timestamp AT TIME ZONE 'UTC' FROM packed_days))`).Scan(&since); err != nil {
		return time.Time{}, fmt.Errorf("span columns: %w", err)
	}
	if since == nil {
		return time.Time{}, nil
	}
	return *since, nil
}

// A column walk's first step reads columnWalkRows blocks, each next one
// twice as many up to columnWalkMax: a search that finds its answers in
// the newest blocks reads few, and a scan of a window of small blocks
// (about a hundred spans each, from writes spread over a day) does not
// pay a round trip per 16.
const (
	columnWalkRows = 16
	columnWalkMax  = 256
)

// columnStep reads the next blocks of the window newest first, with only
// the sections pre reads, and returns the traces pre nominates.
func (w *walk) columnStep(ctx context.Context) ([]candidate, bool, error) {
	cols := w.pre.Columns()
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// A section's bytes: a substring of data, which reads only the TOAST
	// chunks it covers (data is stored uncompressed); NULL when the block
	// has no section of that name.
	sel := make([]string, len(cols))
	for i, c := range cols {
		p := "array_position(names, " + arg(c) + "::text)"
		from := "coalesce(ends[" + p + " - 1], 0)"
		sel[i] = "substring(data FROM " + from + " + 1 FOR ends[" + p + "] - " + from + ")"
	}
	query := `SELECT ts_max, spans, ` + strings.Join(sel, ", ") + ` FROM span_columns WHERE tenant = ` + arg(w.tenant) +
		` AND ts > ` + arg(w.start.Add(-columnHour)) + ` AND ts <= ` + arg(w.end) +
		` AND ts_max >= ` + arg(w.start) + ` AND ts_max <= ` + arg(w.cursor) +
		` ORDER BY ts_max DESC LIMIT ` + arg(w.colRows)
	br := w.s.pool.SendBatch(ctx, newestFirst(query, args))
	defer br.Close()
	rows, err := batchRows(br)
	if err != nil {
		return nil, false, err
	}
	var cands []candidate
	n, oldest := 0, w.cursor
	for rows.Next() {
		n++
		var tsMax time.Time
		var spans int32
		secs := make([][]byte, len(cols))
		dst := []any{&tsMax, &spans}
		for i := range secs {
			dst = append(dst, &secs[i])
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return nil, false, err
		}
		oldest = tsMax
		ids, err := w.pre.Traces(int(spans), secs)
		if err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("span columns at %s: %w", tsMax.Format(time.RFC3339Nano), err)
		}
		for _, raw := range ids {
			id := zipkin.TraceID{High: binary.BigEndian.Uint64(raw[:8]), Low: binary.BigEndian.Uint64(raw[8:])}
			cands = w.nominate(cands, id, tsMax)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if err := br.Close(); err != nil { // the COMMIT
		return nil, false, err
	}
	if n < w.colRows {
		return cands, true, nil
	}
	w.colRows = min(2*w.colRows, columnWalkMax)
	w.advance(oldest)
	return cands, false, nil
}
