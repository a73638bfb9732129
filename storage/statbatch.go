package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// span_stats_batches.cells: what one batch counted in one minute, every
// cell in one value, written by the batch's transaction and folded into
// span_stats by the stats job (statsjob.go). As span_stats rows, a batch
// of 500 spans over 400 operations took 400 rows of ~370 bytes with their
// four index entries, 237 bytes a span left in the table file until the
// fold (BenchmarkDensity); packed, one row and one index entry.
//
// The cells are stored in statChunks sections, one per slice of the cell
// hash space the fold takes at a time (cellChunk), so that the fold reads
// one slice of every batch with substring() — the column is stored
// uncompressed (STORAGE EXTERNAL), which lets PostgreSQL fetch just those
// bytes — and never holds more than a slice's cells. chunks holds the
// sections' offsets: section c is cells[chunks[c]:chunks[c+1]] (chunks
// has statChunks+1 entries, the first 0, the last len(cells)). An empty
// section is no bytes; any other is:
//
//	version byte (statBatchV1)
//	uvarint n, then n strings: uvarint length, bytes (the section's
//	  service, span and remote names, each once)
//	uvarint cells, then per cell:
//	  uvarint service, name, remote (indexes into the strings)
//	  byte kind (zipkin.proto's, 0 for none)
//	  uvarint calls, errors, stored bytes; zigzag varint duration sum (µs)
//	  uvarint length, the durations' sketch (sketch.go)
//	  the exemplars (fields.go), their starts after the minute
//
// A batch's cells are never a service's total (the fold writes those).
const (
	statBatchV1 = 1
	// statChunks is how many slices of the cell hash space the fold takes
	// one at a time, so that the cells it holds at once are a sixteenth of
	// a minute's or an hour's: with 100,000 distinct operations, one pass
	// held 340 MiB of sketches (BenchmarkStatsManyOperations).
	statChunks = 16
)

// cellChunk is the section of the hash space a cell's hash falls in:
// chunk 0 starts at math.MinInt64, as fold walks them.
func cellChunk(h int64) int {
	return int((uint64(h) ^ 1<<63) >> 60)
}

// chunkBounds is the hash range of chunk c, inclusive.
func chunkBounds(c int) (lo, hi int64) {
	const width = uint64(1) << 60 // 2^64 / statChunks
	lo = int64(uint64(c)*width ^ 1<<63)
	return lo, lo + int64(width-1)
}

// statBatchRow is one span_stats_batches row but its tenant.
type statBatchRow struct {
	minute int64 // µs
	cells  []byte
	chunks []int32
}

const insertStatBatch = `INSERT INTO span_stats_batches (tenant, ts, cells, chunks) VALUES ($1, $2, $3, $4)`

// batchRows is a writer's tally as span_stats_batches rows, one per minute.
func (t statTally) batchRows() []statBatchRow {
	byMinute := map[int64][]statKey{}
	for k := range t {
		byMinute[k.ts] = append(byMinute[k.ts], k)
	}
	rows := make([]statBatchRow, 0, len(byMinute))
	for minute, keys := range byMinute {
		rows = append(rows, encodeStatBatch(minute, keys, t))
	}
	slices.SortFunc(rows, func(a, b statBatchRow) int { return cmp.Compare(a.minute, b.minute) })
	return rows
}

// encodeStatBatch encodes the cells of t at keys, all of one minute.
func encodeStatBatch(minute int64, keys []statKey, t statTally) statBatchRow {
	var byChunk [statChunks][]statKey
	for _, k := range keys {
		c := cellChunk(k.cell.hash())
		byChunk[c] = append(byChunk[c], k)
	}
	row := statBatchRow{minute: minute, chunks: make([]int32, 0, statChunks+1)}
	for _, ks := range byChunk {
		row.chunks = append(row.chunks, int32(len(row.cells)))
		if len(ks) == 0 {
			continue
		}
		slices.SortFunc(ks, func(a, b statKey) int { return compareCells(a.cell, b.cell) })
		strs := map[string]uint64{}
		var names []string
		for _, k := range ks {
			for _, s := range []string{k.cell.service, k.cell.name, k.cell.remote} {
				if _, ok := strs[s]; !ok {
					strs[s] = uint64(len(names))
					names = append(names, s)
				}
			}
		}
		b := row.cells
		b = append(b, statBatchV1)
		b = binary.AppendUvarint(b, uint64(len(names)))
		for _, s := range names {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = binary.AppendUvarint(b, uint64(len(ks)))
		for _, k := range ks {
			a := t[k]
			b = binary.AppendUvarint(b, strs[k.cell.service])
			b = binary.AppendUvarint(b, strs[k.cell.name])
			b = binary.AppendUvarint(b, strs[k.cell.remote])
			b = append(b, byte(k.cell.kind))
			for _, n := range []int64{a.calls, a.errors, a.bytes} {
				b = binary.AppendUvarint(b, uint64(n))
			}
			b = binary.AppendVarint(b, a.durSum)
			sk := encodeSketch(nil, a.sketch)
			b = binary.AppendUvarint(b, uint64(len(sk)))
			b = append(b, sk...)
			b = appendExemplars(b, minute, a.slow, a.failed)
		}
		row.cells = b
	}
	row.chunks = append(row.chunks, int32(len(row.cells)))
	return row
}

var errBadStatBatch = errors.New("stored stats batch is corrupt")

// selectStatBatches is the batches of a tenant's range [$2, $3), as
// scanStatBatches reads them.
const selectStatBatches = `SELECT ts, cells FROM span_stats_batches WHERE tenant = $1 AND ts >= $2 AND ts < $3`

// scanStatBatches calls fn with each cell keep takes (nil: all) of the
// batches rows holds (selectStatBatches).
func scanStatBatches(rows pgx.Rows, keep func(statCell) bool, fn func(statKey, *statAgg) error) error {
	var minute time.Time
	var cells []byte
	_, err := pgx.ForEachRow(rows, []any{&minute, &cells}, func() error {
		return decodeStatBatch(minute.UnixMicro(), cells, keep, fn)
	})
	return err
}

// decodeStatBatch calls fn with each cell of sections (one or more whole
// sections of a batch of the minute given, µs) that keep takes (nil: all);
// the others are checked but their sketch is not decoded. Every count is
// checked against the bytes left before anything is allocated for it, so
// a corrupt value costs at most its own length.
func decodeStatBatch(minute int64, sections []byte, keep func(statCell) bool, fn func(statKey, *statAgg) error) error {
	d := fieldReader{b: sections, bad: errBadStatBatch}
	for len(d.b) > 0 && d.err == nil {
		if v := d.byte(); v != statBatchV1 {
			d.fail("version %d", v)
			break
		}
		names := make([]string, d.items(1))
		for i := range names {
			names[i] = string(d.bytes())
		}
		name := func() string {
			i := d.uvarint()
			if i >= uint64(len(names)) {
				d.fail("name %d of %d", i, len(names))
				return ""
			}
			return names[i]
		}
		for n := d.items(11); n > 0 && d.err == nil; n-- {
			var k statKey
			k.ts = minute
			k.cell.service, k.cell.name, k.cell.remote = name(), name(), name()
			kind := d.byte()
			if kind > byte(zipkin.KindConsumer) {
				d.fail("kind %d", kind)
			}
			k.cell.kind = zipkin.Kind(kind)
			kept := keep == nil || keep(k.cell)
			a := &statAgg{}
			a.calls, a.errors, a.bytes = d.count(), d.count(), d.count()
			a.durSum = d.varint()
			if sk := d.bytes(); d.err == nil && kept {
				a.sketch = newSketch()
				if err := mergeSketch(a.sketch, sk); err != nil {
					return err
				}
			}
			d.exemplars(minute, func(i int, x exemplar) { *[...]**exemplar{&a.slow, &a.failed}[i] = &x })
			if d.err != nil || !kept {
				continue
			}
			if err := fn(k, a); err != nil {
				return err
			}
		}
	}
	return d.err
}
