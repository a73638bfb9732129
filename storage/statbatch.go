package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
//	  byte flags: 1 a slowest-span exemplar follows, 2 a failed one
//	  per exemplar: trace ID high and low, span ID (8 bytes each, big
//	  endian), zigzag varints duration (µs) and start − minute (µs)
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
		b := append(row.cells, statBatchV1)
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
			var flags byte
			if a.slow != nil {
				flags |= 1
			}
			if a.failed != nil {
				flags |= 2
			}
			b = append(b, flags)
			for _, e := range []*exemplar{a.slow, a.failed} {
				if e == nil {
					continue
				}
				b = binary.BigEndian.AppendUint64(b, e.trace.High)
				b = binary.BigEndian.AppendUint64(b, e.trace.Low)
				b = binary.BigEndian.AppendUint64(b, uint64(e.span))
				b = binary.AppendVarint(b, e.us)
				b = binary.AppendVarint(b, e.at-minute)
			}
		}
		row.cells = b
	}
	row.chunks = append(row.chunks, int32(len(row.cells)))
	return row
}

func compareCells(a, b statCell) int {
	return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.name, b.name),
		cmp.Compare(a.storedKind(), b.storedKind()), cmp.Compare(a.remote, b.remote))
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
	d := statDecoder{b: sections}
	for len(d.b) > 0 {
		if v := d.byte(); v != statBatchV1 {
			return fmt.Errorf("%w: version %d", errBadStatBatch, v)
		}
		names := make([]string, d.count(1))
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
		for n := d.count(11); n > 0 && d.err == nil; n-- {
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
			a.calls, a.errors, a.bytes = d.int(), d.int(), d.int()
			a.durSum = d.varint()
			if sk := d.bytes(); d.err == nil && kept {
				a.sketch = newSketch()
				if err := mergeSketch(a.sketch, sk); err != nil {
					return err
				}
			}
			flags := d.byte()
			if flags > 3 {
				d.fail("flags %#x", flags)
			}
			for bit, e := range []**exemplar{&a.slow, &a.failed} {
				if flags&(1<<bit) != 0 {
					*e = d.exemplar(minute)
				}
			}
			if d.err != nil {
				break
			}
			if !kept {
				continue
			}
			if err := fn(k, a); err != nil {
				return err
			}
		}
	}
	return d.err
}

// statDecoder reads a section; its first error sticks and every later
// read returns zero.
type statDecoder struct {
	b   []byte
	err error
}

func (d *statDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBadStatBatch, fmt.Sprintf(format, args...))
		d.b = nil
	}
}

func (d *statDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *statDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *statDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int is a count, never negative as stored.
func (d *statDecoder) int() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail("count %d", v)
		return 0
	}
	return int64(v)
}

// count is a number of items of at least min bytes each.
func (d *statDecoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("%d items in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *statDecoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("%d bytes of %d", n, len(d.b))
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *statDecoder) exemplar(minute int64) *exemplar {
	if len(d.b) < 24 {
		d.fail("truncated exemplar")
		return nil
	}
	e := &exemplar{
		trace: zipkin.TraceID{High: binary.BigEndian.Uint64(d.b), Low: binary.BigEndian.Uint64(d.b[8:])},
		span:  zipkin.SpanID(binary.BigEndian.Uint64(d.b[16:])),
	}
	d.b = d.b[24:]
	e.us = d.varint()
	e.at = minute + d.varint()
	return e
}
