package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zipq/zipq/zipkin"
)

// A block is a few dozen small traces of one tenant and one closed day,
// packed (pack.go): their merged segment payloads (the uncompressed
// ListOfSpans a segment holds) one after another, compressed as one zstd
// frame with the segment codec. zstd then finds the repeats between
// traces (service names, tag keys, URLs) that a frame per trace cannot
// see: on OTel-like spans 97 → 72 bytes a span (docs/BENCHMARKS.md), and
// a block decodes in a fraction of a millisecond. A member's entry may
// start with its trace's links record (splitEntry), the trace_links row it
// replaces.
//
// A block's directory. Blocks packed since migration 21 list their
// members themselves, and the members have no segments row: a row and its
// key took about 140 bytes a trace, where an entry takes 8 bytes in lows
// and about 12 in dir (docs/BENCHMARKS.md, "Packed days: the member rows
// replaced by block directories"). lows holds the lower halves of the
// members' trace IDs, in block order, which is trace ID order: a block is
// found by its ID range (byIDQuery), then its lows say whether it lists a
// trace; dir holds the rest of each entry in the same order
// (appendDirEntry). Entries' payloads follow one another in the block, so
// an entry's offset is the sum of the lengths before it. Readers list an
// entry where they list a trace's segments (packedEntry.segKey). Blocks
// packed before keep their members' rows, each a reference (appendRef)
// into the block; readers take both.

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

// uvarintLen is how many bytes v takes as a uvarint (protobuf's varint is
// the same encoding), which the decoders compare to what they read to
// refuse a non-minimal spelling. Counted, not encoded: search checks a
// length for every member field of thousands of group rows a step, and
// encoding into a new slice allocated each time (13 % of a packed day's
// search CPU at 10M spans).
func uvarintLen(v uint64) int { return protowire.SizeVarint(v) }

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
	lows []int64
	dir  []byte
}

// add appends a member's payload and its directory entry; ts, its trace's
// date, is within the block's day.
func (b *block) add(id zipkin.TraceID, ts time.Time, spans int32, payload []byte) {
	if len(b.raw) == 0 {
		b.key.low = int64(id.Low)
	}
	b.raw = append(b.raw, payload...)
	b.lows = append(b.lows, int64(id.Low))
	b.dir = appendDirEntry(b.dir, dirEntry{id: id, ts: ts, spans: spans, len: len(payload)}, b.key.day)
}

// dirEntry is a member in its block's directory.
type dirEntry struct {
	id       zipkin.TraceID
	ts       time.Time // its trace's date, as its segments row had it
	spans    int32     // 0: no longer listed (unlist)
	off, len int
}

// appendDirEntry appends e's part of dir: its ID's upper half, 8 bytes
// little endian, then as uvarints the µs from start (its block's day) to
// its date, its span count and its payload's length.
func appendDirEntry(dir []byte, e dirEntry, start time.Time) []byte {
	dir = binary.LittleEndian.AppendUint64(dir, e.id.High)
	dir = binary.AppendUvarint(dir, uint64(e.ts.Sub(start).Microseconds()))
	dir = binary.AppendUvarint(dir, uint64(e.spans))
	return binary.AppendUvarint(dir, uint64(e.len))
}

// parseDir reads a block's directory: lows and dir as stored, start the
// block's day. Its strictness (minimal uvarints, dates within the day, one
// entry a low) makes one directory one spelling.
func parseDir(lows []int64, dir []byte, start time.Time) ([]dirEntry, error) {
	bad := fmt.Errorf("%w: bad block directory", errCorruptSegment)
	out := make([]dirEntry, 0, len(lows))
	off := 0
	for _, low := range lows {
		if len(dir) < 8 {
			return nil, bad
		}
		e := dirEntry{id: zipkin.TraceID{High: binary.LittleEndian.Uint64(dir), Low: uint64(low)}, off: off}
		dir = dir[8:]
		var v [3]uint64
		for i := range v {
			x, n := binary.Uvarint(dir)
			if n <= 0 || n != uvarintLen(x) {
				return nil, bad
			}
			v[i], dir = x, dir[n:]
		}
		if v[0] >= uint64(day.Microseconds()) || v[1] > math.MaxInt32 || v[2] == 0 || v[2] > math.MaxInt32-uint64(off) {
			return nil, bad
		}
		e.ts, e.spans, e.len = start.Add(time.Duration(v[0])*time.Microsecond), int32(v[1]), int(v[2])
		off += e.len
		out = append(out, e)
	}
	if len(dir) > 0 {
		return nil, bad
	}
	return out, nil
}

// packedEntry is a trace's entry in a block with a directory.
type packedEntry struct {
	tenant int16
	dirEntry
	block blockKey
}

// segKey is what stands for the entry in a trace's list of segments: its
// date and its block's uid, a key no segments row has, so compaction's
// delete by key passes it by.
func (e *packedEntry) segKey() segKey { return segKey{e.ts, e.block.uid} }

// member is the entry as a member whose block is to be read.
func (e *packedEntry) member(fn, links func([]byte) error) member {
	return member{key: e.block, off: e.off, len: e.len, fn: fn, links: links}
}

// dirColumns are a block's key and directory, as scanDirs reads them.
const dirColumns = `b.trace_id_low, b.tenant, b.ts, b.block_uid, b.lows, b.dir`

// dirQuery selects the directories of the blocks that where selects (a
// condition on segment_blocks b), for scanDirs.
func dirQuery(where string) string {
	return `SELECT ` + dirColumns + ` FROM segment_blocks b WHERE b.lows IS NOT NULL AND ` + where
}

// scanDirs reads dirQuery's (or byIDQuery's) rows and returns the entries
// keep accepts, of each block once.
func scanDirs(rows pgx.Rows, keep func(tenant int16, e *dirEntry) bool) ([]packedEntry, error) {
	var out []packedEntry
	var k blockKey
	var lows []int64
	var dir []byte
	seen := map[blockKey]bool{}
	_, err := pgx.ForEachRow(rows, []any{&k.low, &k.tenant, &k.day, &k.uid, &lows, &dir}, func() error {
		k.day = k.day.UTC()
		if seen[k] {
			return nil
		}
		seen[k] = true
		entries, err := parseDir(lows, dir, k.day)
		if err != nil {
			return err
		}
		for i := range entries {
			if keep(k.tenant, &entries[i]) {
				out = append(out, packedEntry{tenant: k.tenant, dirEntry: entries[i], block: k})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read block directories: %w", err)
	}
	return out, nil
}

// packedEntries is scanDirs of dirQuery(where) with args, for the listed
// entries (not unlist's) keep accepts.
func packedEntries(ctx context.Context, q querier, where string, args []any, keep func(tenant int16, e *dirEntry) bool) ([]packedEntry, error) {
	rows, err := q.Query(ctx, dirQuery(where), args...)
	if err != nil {
		return nil, fmt.Errorf("read block directories: %w", err)
	}
	return scanDirs(rows, listed(keep))
}

// listed is keep for the entries still listed.
func listed(keep func(int16, *dirEntry) bool) func(int16, *dirEntry) bool {
	return func(tenant int16, e *dirEntry) bool { return e.spans > 0 && keep(tenant, e) }
}

// byIDQuery selects, as dirQuery does, the directories of the blocks
// listing a trace of tenant $1 whose ID's lower half is in $2 (the lower
// halves, from lowsFrom). A tenant's blocks of a day are written in trace
// ID order (packTraces), so for each packed day and lower half x the
// block that can list x is the last one starting below x, or one starting
// with x: traces sharing a lower half (twins) can straddle a boundary, the
// earlier at one block's end and the later first in the next
// (TestPackedTwins). Each is one step of an index of the day's blocks
// (its primary key, or the range index on (tenant, ts, trace_id_low) where
// other tenants' blocks interleave), not an entry a trace as the GIN index
// on lows had (migration 23); the directory then says whether x is there.
// The days come from packed_days, each day's partition picked as the
// query runs, so one plan serves whatever the days. A block listing two
// of the lower halves comes twice (scanDirs reads it once).
func byIDQuery(lowsFrom string) string {
	day := `SELECT ` + dirColumns + ` FROM segment_blocks b WHERE b.tenant = $1 AND b.ts = p.day::timestamp AT TIME ZONE 'UTC'`
	return `SELECT ` + dirColumns + `
	FROM packed_days p CROSS JOIN ` + lowsFrom + ` AS x(low) CROSS JOIN LATERAL (
		(` + day + ` AND b.trace_id_low = x.low)
		UNION ALL
		(` + day + ` AND b.trace_id_low < x.low ORDER BY b.trace_id_low DESC LIMIT 1)) b
	WHERE x.low = ANY(b.lows)`
}

// The lookups by ID, of one trace and of many. One trace's lower half is
// a scalar: PostgreSQL plans a prepared statement for its parameters five
// times, then keeps the generic plan only if it is estimated no dearer,
// and a generic unnest is ten rows where a one-element array is one. With
// the array, every read of a trace was planned again: about 1 ms across
// the partitions, a packed trace read 1.3-1.9 ms at p50 against 0.8-1.2
// (BenchmarkPack, docs/BENCHMARKS.md).
var (
	byIDQueryOne  = byIDQuery(`(VALUES ($2::bigint))`)
	byIDQueryMany = byIDQuery(`unnest($2::bigint[])`)
)

// lowIn accepts the entries whose ID's lower half is in lows.
func lowIn(lows []int64) func(int16, *dirEntry) bool {
	want := make(map[uint64]bool, len(lows))
	for _, l := range lows {
		want[uint64(l)] = true
	}
	return func(_ int16, e *dirEntry) bool { return want[e.id.Low] }
}

// unlist marks the entries of the traces in gone, in day d's blocks, as
// no longer listed (a span count of 0): keep by value thinning a day
// packed before it was thinned drops the traces' rows but keeps its
// blocks whole, so their entries stay and readers pass them by.
func unlist(ctx context.Context, tx pgx.Tx, d time.Time, gone map[thinKey]bool) error {
	if len(gone) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, dirQuery(`b.ts = $1`), d)
	if err != nil {
		return fmt.Errorf("unlist thinned traces: %w", err)
	}
	entries, err := scanDirs(rows, func(int16, *dirEntry) bool { return true })
	if err != nil {
		return fmt.Errorf("unlist thinned traces: %w", err)
	}
	// Entries come block by block, in block order; a block's directory is
	// written again whole, listed entries and not.
	dirs := map[blockKey][]byte{}
	changed := map[blockKey]bool{}
	var order []blockKey
	for _, e := range entries {
		if _, ok := dirs[e.block]; !ok {
			order = append(order, e.block)
		}
		if gone[thinKey{e.tenant, e.id}] {
			e.spans = 0
			changed[e.block] = true
		}
		dirs[e.block] = appendDirEntry(dirs[e.block], e.dirEntry, e.block.day)
	}
	b := &pgx.Batch{}
	for _, k := range order {
		if changed[k] {
			b.Queue(`UPDATE segment_blocks SET dir = $5 WHERE trace_id_low = $1 AND tenant = $2 AND ts = $3 AND block_uid = $4`, k.low, k.tenant, k.day, k.uid, dirs[k])
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("unlist thinned traces: %w", err)
	}
	return nil
}

// rowsAndEntries runs rowsSQL, a query of segments whose $1 is tenant and
// $2 lows, and finds the entries of tenant's traces whose ID's lower half
// is in lows, in one round trip: scan reads the rows (to the end), and
// the entries are returned.
func rowsAndEntries(ctx context.Context, q querier, tenant int16, lows []int64, rowsSQL string, scan func(pgx.Rows) error) ([]packedEntry, error) {
	b := &pgx.Batch{}
	b.Queue(rowsSQL, tenant, lows)
	if len(lows) == 1 {
		b.Queue(byIDQueryOne, tenant, lows[0])
	} else {
		b.Queue(byIDQueryMany, tenant, lows)
	}
	br := q.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	if err := scan(rows); err != nil {
		return nil, err
	}
	if rows, err = br.Query(); err != nil {
		return nil, fmt.Errorf("read block directories: %w", err)
	}
	entries, err := scanDirs(rows, listed(lowIn(lows)))
	if err != nil {
		return nil, err
	}
	return entries, br.Close()
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

// blockKeyColumns is the distinct values of each of keys' columns.
func blockKeyColumns(keys []blockKey) (lows []int64, tenants []int16, days []time.Time, uids []int64) {
	for _, k := range keys {
		if !slices.Contains(lows, k.low) {
			lows = append(lows, k.low)
		}
		if !slices.Contains(tenants, k.tenant) {
			tenants = append(tenants, k.tenant)
		}
		if !slices.ContainsFunc(days, k.day.Equal) {
			days = append(days, k.day)
		}
		if !slices.Contains(uids, k.uid) {
			uids = append(uids, k.uid)
		}
	}
	return lows, tenants, days, uids
}

// blockBufs holds decode buffers for members.read, up to maxPooledBlock
// bytes each (a block's uncompressed size is a few hundred KB).
var blockBufs sync.Pool

const maxPooledBlock = 4 << 20

// blockBatch is how many blocks one query reads.
const blockBatch = 256

// read reads the members' blocks, each once, and calls each member's fn
// with its spans.
func (m members) read(ctx context.Context, q querier) error {
	byKey := map[blockKey][]member{}
	need := map[blockKey]int{} // how far into the block its members end
	var keys []blockKey
	for _, mb := range m {
		if byKey[mb.key] == nil {
			keys = append(keys, mb.key)
		}
		byKey[mb.key] = append(byKey[mb.key], mb)
		need[mb.key] = max(need[mb.key], mb.off+mb.len)
	}
	// A block decodes to a few hundred KB: a buffer from the last read,
	// not a new one grown through the decode, which cost a trace read on
	// a packed day as much as the decode itself (memmove and GC in
	// BenchmarkPack's profile). Members' fns copy what they keep.
	bp, _ := blockBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := *bp
	defer func() {
		if cap(buf) <= maxPooledBlock {
			*bp = buf[:0]
			blockBufs.Put(bp)
		}
	}()
	for len(keys) > 0 {
		n := min(len(keys), blockBatch)
		lows, tenants, days, uids := blockKeyColumns(keys[:n])
		keys = keys[n:]
		// Each column's values as a set, not the keys joined to an unnest:
		// the join was planned for ten keys of unknown days, as a hash
		// join over every block of every day (a packed trace read 1.0–1.9
		// ms at p50, BenchmarkPack), where these are a primary key probe
		// of the days named. A row matching the sets but not a key is
		// passed by below.
		rows, err := q.Query(ctx, `SELECT b.trace_id_low, b.tenant, b.ts, b.block_uid, b.data FROM segment_blocks b
			WHERE b.trace_id_low = ANY($1) AND b.tenant = ANY($2) AND b.ts = ANY($3) AND b.block_uid = ANY($4)`, lows, tenants, days, uids)
		if err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
		var k blockKey
		var data []byte
		_, err = pgx.ForEachRow(rows, []any{&k.low, &k.tenant, &k.day, &k.uid, &data}, func() error {
			k.day = k.day.UTC()
			if byKey[k] == nil {
				return nil
			}
			raw, err := decompressPrefix(data, buf, need[k])
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
