package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
)

// A block is a few dozen small traces of one tenant and one closed day,
// packed (pack.go): their merged segment payloads (the uncompressed
// ListOfSpans a segment holds) one after another, compressed as one zstd
// frame with the segment codec. zstd then finds the repeats between
// traces (service names, tag keys, URLs) that a frame per trace cannot
// see: on OTel-like spans 97 → 72 bytes a span (docs/BENCHMARKS.md), and
// a block decodes in a fraction of a millisecond. Each trace keeps its
// segments row as a member: its data is a reference (blockRef) instead of
// a zstd frame. A member's entry may start with its trace's links record
// (splitEntry), the trace_links row it replaces.

// blockTarget is the compressed size a block is built to. A block is
// stored in TOAST chunks of 1,996 bytes, four to a page, each block's
// last one short: blocks of a few KB left a quarter of their pages empty
// (blocks of 16 zipkin-go traces, 6 KB: 25.7 bytes a span of payload took
// 36.4), blocks of 24 KB lose a few percent. Decoding one stays near
// 0.2 ms (BenchmarkSegmentLayouts: 64 OTel-like traces, 34 KB, 175 µs).
const blockTarget = 24 << 10

// A reference is what a member's data holds: a 0 byte, which no zstd
// frame starts with (their magic number is 28 b5 2f fd, little endian),
// then its block's first trace ID (lower half) and block_uid, 8 bytes
// each little endian, then the payload's offset and length in the
// uncompressed block as uvarints. With the tenant and the day of the
// row's ts, that is the block's primary key.
const refMarker = 0

func isBlockRef(data []byte) bool { return len(data) > 0 && data[0] == refMarker }

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

// appendRef appends a member's reference.
func appendRef(b []byte, low, uid int64, off, n int) []byte {
	b = append(b, refMarker)
	b = binary.LittleEndian.AppendUint64(b, uint64(low))
	b = binary.LittleEndian.AppendUint64(b, uint64(uid))
	b = binary.AppendUvarint(b, uint64(off))
	return binary.AppendUvarint(b, uint64(n))
}

// parseRef reads a member's reference.
func parseRef(data []byte) (low, uid int64, off, n int, err error) {
	if len(data) < 17 || data[0] != refMarker {
		return 0, 0, 0, 0, fmt.Errorf("%w: bad block reference", errCorruptSegment)
	}
	low, uid = int64(binary.LittleEndian.Uint64(data[1:])), int64(binary.LittleEndian.Uint64(data[9:]))
	o, k := binary.Uvarint(data[17:])
	if k <= 0 || o > math.MaxInt32 {
		return 0, 0, 0, 0, fmt.Errorf("%w: bad block reference", errCorruptSegment)
	}
	l, m := binary.Uvarint(data[17+k:])
	// Minimal uvarints only: one reference, one spelling.
	if m <= 0 || l > math.MaxInt32 || 17+k+m != len(data) || k != uvarintLen(o) || m != uvarintLen(l) {
		return 0, 0, 0, 0, fmt.Errorf("%w: bad block reference", errCorruptSegment)
	}
	return low, uid, int(o), int(l), nil
}

// blockKey is a segment_blocks row's primary key.
type blockKey struct {
	low    int64
	tenant int16
	day    time.Time
	uid    int64
}

// block is one block being built.
type block struct {
	key  blockKey
	raw  []byte
	dict int16
	data []byte
}

// add appends a member's payload and returns its reference.
func (b *block) add(low int64, payload []byte) (off, n int) {
	if len(b.raw) == 0 {
		b.key.low = low
	}
	off = len(b.raw)
	b.raw = append(b.raw, payload...)
	return off, len(payload)
}

// seal compresses the block and fixes its identity.
func (b *block) seal(c *segmentCodec) {
	b.key.uid = int64(xxhash.Sum64(b.raw))
	b.data, b.dict = c.enc.EncodeAll(b.raw, make([]byte, 0, len(b.raw)/3)), c.id
}

// member is a segments row whose payload is in a block, met while reading
// rows: fn is what to call with each of its spans' canonical bytes, and
// links with its links record if it carries one (either may be nil).
type member struct {
	key      blockKey
	off, len int
	fn       func(canonical []byte) error
	links    func(record []byte) error
}

// members collects the block members a read meets, to read their blocks
// once the rows are read (a connection runs one query at a time).
type members []member

// add records a member row's reference (its block is of the row's tenant
// and of the day of its ts).
func (m *members) add(tenant int16, ts time.Time, ref []byte, fn, links func([]byte) error) error {
	low, uid, off, n, err := parseRef(ref)
	if err != nil {
		return err
	}
	*m = append(*m, member{key: blockKey{low, tenant, ts.UTC().Truncate(day), uid}, off: off, len: n, fn: fn, links: links})
	return nil
}

// blockBatch is how many blocks one query reads.
const blockBatch = 256

// read reads the members' blocks, each once, and calls each member's fn
// with its spans.
func (m members) read(ctx context.Context, q querier) error {
	byKey := map[blockKey][]member{}
	var keys []blockKey
	for _, mb := range m {
		if byKey[mb.key] == nil {
			keys = append(keys, mb.key)
		}
		byKey[mb.key] = append(byKey[mb.key], mb)
	}
	var buf []byte
	for len(keys) > 0 {
		n := min(len(keys), blockBatch)
		lows, tenants, days, uids := make([]int64, n), make([]int16, n), make([]time.Time, n), make([]int64, n)
		for i, k := range keys[:n] {
			lows[i], tenants[i], days[i], uids[i] = k.low, k.tenant, k.day, k.uid
		}
		keys = keys[n:]
		rows, err := q.Query(ctx, `SELECT b.trace_id_low, b.tenant, b.ts, b.block_uid, b.data FROM segment_blocks b
			JOIN unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::bigint[]) AS k(low, tenant, ts, uid)
			  ON b.trace_id_low = k.low AND b.tenant = k.tenant AND b.ts = k.ts AND b.block_uid = k.uid`, lows, tenants, days, uids)
		if err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
		var k blockKey
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&k.low, &k.tenant, &k.day, &k.uid, &data}, func() error {
			k.day = k.day.UTC()
			raw, err := decompress(data, buf)
			if err != nil {
				return err
			}
			buf = raw
			for _, mb := range byKey[k] {
				if mb.off+mb.len > len(raw) {
					return fmt.Errorf("%w: a member outside its block", errCorruptSegment)
				}
				if err := splitEntry(raw[mb.off:mb.off+mb.len], mb.fn, mb.links); err != nil {
					return err
				}
			}
			delete(byKey, k)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
	}
	if len(byKey) > 0 {
		return fmt.Errorf("%w: %d blocks missing", errCorruptSegment, len(byKey))
	}
	return nil
}
