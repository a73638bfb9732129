package storage

// A packed day's search index in group rows (migration 00022). A
// span_index row a trace and minute costs its header, IDs, times and the
// array's header whatever it holds (127 bytes a trace on the stats
// generator's spans), and each trace repeats the keys its neighbours have
// too (the services, names and tag keys of one application). Packing
// rewrites the day's rows, in the order search walks them (ts_max), into
// rows of up to groupMaxMembers traces of the same minute: keys is the
// union of theirs, so the GIN index and the walk's per-row check see one
// row where they saw dozens, and members lists each trace with its
// durations and the positions in keys of the keys it has, so that search
// still nominates exactly the traces an ordinary row would have. bounds
// (migration 00024) keeps each trace's latest span start, so that search
// reads a group's traces newest first, as it reads ordinary rows.

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

const (
	// groupMaxMembers bounds the traces of a group row.
	groupMaxMembers = 64
	// groupMaxBytes bounds a group row's keys, members and bounds
	// (estimated as they grow): the row stays below PostgreSQL's TOAST
	// threshold (2032 bytes), so the walk reads it inline, as it reads
	// ordinary rows.
	groupMaxBytes = 1800
)

// groupMember is one trace of a group row.
type groupMember struct {
	id             zipkin.TraceID
	hasDur         bool  // one of its spans has a duration
	durMin, durMax int64 // µs, when hasDur
	keys           []uint32
	tsMax          time.Time // its latest span start (span_index.bounds)
}

// appendMembers encodes members as span_index.members: per trace its ID
// (lower half, then upper half, 8 bytes little endian each), then as
// uvarints its shortest duration + 1 (0: none) and, with one, longest
// minus shortest, its count of keys, and their positions in the row's
// keys (ascending), the first as it is and each next as its distance from
// the one before less one.
func appendMembers(b []byte, ms []groupMember) []byte {
	for _, m := range ms {
		b = binary.LittleEndian.AppendUint64(b, m.id.Low)
		b = binary.LittleEndian.AppendUint64(b, m.id.High)
		if m.hasDur {
			b = binary.AppendUvarint(b, uint64(m.durMin)+1)
			b = binary.AppendUvarint(b, uint64(m.durMax-m.durMin))
		} else {
			b = binary.AppendUvarint(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(len(m.keys)))
		for i, k := range m.keys {
			if i == 0 {
				b = binary.AppendUvarint(b, uint64(k))
			} else {
				b = binary.AppendUvarint(b, uint64(k-m.keys[i-1]-1))
			}
		}
	}
	return b
}

// eachMember calls fn with each member of members as stored in a row with
// n keys, in one groupMember whose keys it reuses: search reads thousands
// of members a step, and copies none. Its strictness (minimal uvarints,
// positions below n, durations that fit) makes one list one spelling:
// appendMembers of what it reads gives b.
func eachMember(b []byte, n int, fn func(m *groupMember) error) error {
	bad := fmt.Errorf("%w: bad index group", errCorruptSegment)
	next := func() (uint64, bool) {
		x, k := binary.Uvarint(b)
		if k <= 0 || k != uvarintLen(x) {
			return 0, false
		}
		b = b[k:]
		return x, true
	}
	var m groupMember
	for len(b) > 0 {
		if len(b) < 16 {
			return bad
		}
		m = groupMember{id: zipkin.TraceID{Low: binary.LittleEndian.Uint64(b), High: binary.LittleEndian.Uint64(b[8:])}, keys: m.keys[:0]}
		b = b[16:]
		d, ok := next()
		if !ok || d > math.MaxInt64 {
			return bad
		}
		if d > 0 {
			span, ok := next()
			if !ok || span > math.MaxInt64-(d-1) {
				return bad
			}
			m.hasDur, m.durMin, m.durMax = true, int64(d-1), int64(d-1+span)
		}
		c, ok := next()
		if !ok || c > uint64(n) {
			return bad
		}
		for i := range int(c) {
			x, ok := next()
			if !ok {
				return bad
			}
			if i > 0 {
				x += uint64(m.keys[i-1]) + 1
			}
			if x >= uint64(n) {
				return bad
			}
			m.keys = append(m.keys, uint32(x))
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
	return nil
}

// appendBounds encodes ms' latest starts as span_index.bounds of a row
// whose latest start is tsMax: ms newest first, each as a uvarint, the
// microseconds it lies below the one before (the first below tsMax).
func appendBounds(b []byte, tsMax time.Time, ms []groupMember) []byte {
	prev := tsMax.UnixMicro()
	for _, m := range ms {
		t := m.tsMax.UnixMicro()
		b = binary.AppendUvarint(b, uint64(prev-t))
		prev = t
	}
	return b
}

// boundReader reads span_index.bounds of a row of starts ts–tsMax member
// by member: each tsMax when bounds is empty (group rows written before
// migration 00024), else one minimal uvarint a member, newest first, none
// below ts, and none left over. Its strictness makes one list one
// spelling.
type boundReader struct {
	b          []byte
	all        bool // empty: every member at the row's ts_max
	prev, room int64
}

func newBoundReader(b []byte, ts, tsMax time.Time) boundReader {
	return boundReader{b: b, all: len(b) == 0, prev: tsMax.UnixMicro(), room: tsMax.UnixMicro() - ts.UnixMicro()}
}

// next is the next member's latest start.
func (r *boundReader) next() (time.Time, error) {
	if !r.all {
		x, k := binary.Uvarint(r.b)
		if k <= 0 || k != uvarintLen(x) || x > uint64(max(r.room, 0)) {
			return time.Time{}, fmt.Errorf("%w: bad index group bounds", errCorruptSegment)
		}
		r.b, r.room, r.prev = r.b[k:], r.room-int64(x), r.prev-int64(x)
	}
	return time.UnixMicro(r.prev).UTC(), nil
}

// end reports bounds left over after the last member.
func (r *boundReader) end() error {
	if len(r.b) > 0 {
		return fmt.Errorf("%w: bad index group bounds", errCorruptSegment)
	}
	return nil
}

// indexRow is a span_index row: an ordinary one (members nil), or a group
// row as read back.
type indexRow struct {
	tenant         int16
	id             zipkin.TraceID
	ts, tsMax      time.Time
	hasDur         bool
	durMin, durMax int64
	keys           []int32 // a sorted set
	members        []byte
	bounds         []byte
}

// values is the row in indexGroupColumns' order.
func (r *indexRow) values() []any {
	var dmin, dmax any
	if r.hasDur {
		dmin, dmax = r.durMin, r.durMax
	}
	empty := func(b []byte) []byte { // NOT NULL
		if b == nil {
			return []byte{}
		}
		return b
	}
	return []any{int64(r.id.Low), r.ts, r.tsMax, int64(r.id.High), dmin, dmax, r.keys, r.tenant, empty(r.members), empty(r.bounds)}
}

// indexGroupColumns are span_index's columns as indexRow.values gives them.
var indexGroupColumns = append(slices.Clone(indexColumns), "members", "bounds")

// grouper gathers ordinary rows, read in (tenant, ts_max) order, into
// group rows.
type grouper struct {
	tenant    int16
	ts, tsMax time.Time
	traces    []*groupTrace
	byID      map[zipkin.TraceID]*groupTrace
	union     map[int32]bool
	bytes     int // the row's keys and members, estimated
	emit      func(indexRow) error
}

// groupTrace is a trace of the open group: its rows' keys merged.
type groupTrace struct {
	row indexRow
}

// memberBytes estimates a member's encoding: its ID, durations and count,
// about a byte a key position, and its bound (at most 4: a minute in µs).
func memberBytes(keys int) int { return 16 + 6 + 2 + keys + 4 }

// add puts r into the open group, or emits that group and opens another
// with r: a group holds one tenant's rows, at most groupMaxMembers traces,
// about groupMaxBytes of keys and members, and starts that all fall within
// a minute of the earliest (span_index's CHECK).
func (g *grouper) add(r indexRow) error {
	t := g.byID[r.id]
	grow := 0
	if t == nil {
		grow = memberBytes(len(r.keys))
	}
	for _, k := range r.keys {
		if !g.union[k] {
			grow += 4
			if t != nil {
				grow++
			}
		}
	}
	ts, tsMax := r.ts, r.tsMax
	if len(g.traces) > 0 {
		ts, tsMax = minTime(g.ts, ts), maxTime(g.tsMax, tsMax)
		full := t == nil && len(g.traces) >= groupMaxMembers || g.bytes+grow > groupMaxBytes
		if r.tenant != g.tenant || !tsMax.Before(ts.Add(indexBucket)) || full {
			if err := g.flush(); err != nil {
				return err
			}
			return g.add(r)
		}
	}
	if g.byID == nil {
		g.byID, g.union = map[zipkin.TraceID]*groupTrace{}, map[int32]bool{}
	}
	g.tenant, g.ts, g.tsMax = r.tenant, ts, tsMax
	g.bytes += grow
	for _, k := range r.keys {
		g.union[k] = true
	}
	if t == nil {
		g.byID[r.id] = &groupTrace{row: r}
		g.traces = append(g.traces, g.byID[r.id])
		return nil
	}
	t.row.merge(&r)
	return nil
}

// merge widens a trace's row to cover o, another of its rows.
func (r *indexRow) merge(o *indexRow) {
	r.ts, r.tsMax = minTime(r.ts, o.ts), maxTime(r.tsMax, o.tsMax)
	if o.hasDur {
		if !r.hasDur {
			r.hasDur, r.durMin, r.durMax = true, o.durMin, o.durMax
		}
		r.durMin, r.durMax = min(r.durMin, o.durMin), max(r.durMax, o.durMax)
	}
	r.keys = sortedSet(append(slices.Clone(r.keys), o.keys...))
}

// flush emits the open group: as an ordinary row when it holds one trace
// (a group row of one costs more), else as a group row of its traces
// newest first (bounds' order), whose IDs are its first trace's.
func (g *grouper) flush() error {
	if len(g.traces) == 0 {
		return nil
	}
	defer func() {
		g.traces, g.bytes = g.traces[:0], 0
		clear(g.byID)
		clear(g.union)
	}()
	if len(g.traces) == 1 {
		return g.emit(g.traces[0].row)
	}
	union := make([]int32, 0, len(g.union))
	for k := range g.union {
		union = append(union, k)
	}
	slices.Sort(union)
	slices.SortStableFunc(g.traces, func(a, b *groupTrace) int { return b.row.tsMax.Compare(a.row.tsMax) })
	first := g.traces[0].row
	row := indexRow{tenant: g.tenant, id: first.id, ts: g.ts, tsMax: g.tsMax, keys: union}
	ms := make([]groupMember, len(g.traces))
	for i, t := range g.traces {
		r := &t.row
		ms[i] = groupMember{id: r.id, hasDur: r.hasDur, durMin: r.durMin, durMax: r.durMax, keys: make([]uint32, len(r.keys)), tsMax: r.tsMax}
		for j, k := range r.keys {
			p, _ := slices.BinarySearch(union, k)
			ms[i].keys[j] = uint32(p)
		}
		if r.hasDur {
			if !row.hasDur {
				row.hasDur, row.durMin, row.durMax = true, r.durMin, r.durMax
			}
			row.durMin, row.durMax = min(row.durMin, r.durMin), max(row.durMax, r.durMax)
		}
	}
	row.members = appendMembers(nil, ms)
	row.bounds = appendBounds(nil, row.tsMax, ms)
	return g.emit(row)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// groupFetch is how many rows one FETCH of groupIndex's cursor reads.
const groupFetch = 10_000

// groupIndex rewrites day d's span_index partition in group rows, leaving
// out the traces keep by value thinned from it (as zipq_rewrite_partition
// does). The caller holds the partition in SHARE mode, so no row lands
// meanwhile. The day's rows are read through a cursor in (tenant,
// ts_max) order and their groups staged in a temporary table, so that
// memory holds one group at a time whatever the day's size; the partition
// is then emptied (TRUNCATE: its old file goes back to the file system at
// commit) and filled from the stage in ts_max order, the order search
// walks it in, its GIN index through the pending list as writes fill it.
func groupIndex(ctx context.Context, tx pgx.Tx, d time.Time) error {
	part := pgx.Identifier{partitionName("span_index", d)}.Sanitize()
	cols := strings.Join(indexGroupColumns, ", ")
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE zipq_index_groups (LIKE span_index INCLUDING DEFAULTS) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("group the day's index: %w", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE zipq_index_rows NO SCROLL CURSOR FOR
		SELECT tenant, trace_id_low, trace_id_high, ts, ts_max, dur_min, dur_max, keys, members, bounds FROM `+part+` p
		WHERE NOT EXISTS (SELECT 1 FROM thinned_traces t WHERE t.day = '`+d.Format(time.DateOnly)+`'::date
			AND t.trace_id_low = p.trace_id_low AND t.trace_id_high = p.trace_id_high AND t.tenant = p.tenant)
		ORDER BY tenant, ts_max`); err != nil {
		return fmt.Errorf("group the day's index: %w", err)
	}
	var staged [][]any
	stage := func() error {
		if len(staged) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"zipq_index_groups"}, indexGroupColumns, pgx.CopyFromRows(staged))
		staged = staged[:0]
		return err
	}
	g := &grouper{emit: func(r indexRow) error {
		staged = append(staged, r.values())
		return nil
	}}
	for {
		rows, err := tx.Query(ctx, `FETCH `+strconv.Itoa(groupFetch)+` FROM zipq_index_rows`)
		if err != nil {
			return fmt.Errorf("group the day's index: %w", err)
		}
		var r indexRow
		var low, high int64
		var dmin, dmax *int64
		n, err := pgx.ForEachRow(rows, []any{&r.tenant, &low, &high, &r.ts, &r.tsMax, &dmin, &dmax, &r.keys, &r.members, &r.bounds}, func() error {
			r.id = zipkin.TraceID{High: uint64(high), Low: uint64(low)}
			r.hasDur = dmin != nil && dmax != nil
			if r.hasDur {
				r.durMin, r.durMax = *dmin, *dmax
			}
			if len(r.members) > 0 { // a group row already: as it is
				staged = append(staged, r.values())
				r = indexRow{}
				return nil
			}
			err := g.add(r)
			r = indexRow{} // pgx gives each row its own keys; the group keeps them
			return err
		})
		if err != nil {
			return fmt.Errorf("group the day's index: %w", err)
		}
		if n.RowsAffected() < groupFetch {
			break
		}
		if err := stage(); err != nil {
			return fmt.Errorf("group the day's index: %w", err)
		}
	}
	if err := g.flush(); err != nil {
		return err
	}
	if err := stage(); err != nil {
		return fmt.Errorf("group the day's index: %w", err)
	}
	for _, q := range []string{`CLOSE zipq_index_rows`, `TRUNCATE ` + part,
		`INSERT INTO ` + part + ` (` + cols + `) SELECT ` + cols + ` FROM zipq_index_groups ORDER BY ts_max`,
		`DROP TABLE zipq_index_groups`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("group the day's index: %w", err)
		}
	}
	return nil
}
