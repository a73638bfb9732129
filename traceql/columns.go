package traceql

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/klauspost/compress/s2"
)

// Span columns: the stored encoding a TraceQL scan reads instead of whole
// traces. A block holds some spans (a write's, an hour of start times) as
// named sections, one per field, so a query reads only the fields it
// tests and decides most spans without building them (docs/BENCHMARKS.md,
// "The scan rate"). Storage keeps the sections opaque and hands back those
// a Prefilter names; this file is the only one that knows what is in them.
//
// Sections (each: a flag byte, 0 raw or 1 S2, then the payload, which
// starts with the number of spans as a uvarint):
//   - "trace": the traces as 16 bytes each (a uvarint count first), then
//     each span's trace as a uvarint index;
//   - "duration": each span's duration in nanoseconds, a zigzag varint;
//   - "name", "status", "statusMessage", "kind", and "span.<key>" for each
//     span attribute: a dictionary (a uvarint count, then each value as a
//     type byte and its bytes), then each span's uvarint code, 0 when the
//     span has no such field.
//
// Only fields that are a function of the span alone are stored: a
// resource's attributes and a scope come from the first span of their
// service in the trace (the zipkin translator's grouping), which may be
// in another block, and events and links are lists. A query reading them
// is decided "maybe" there, and the trace is read whole.

// Column section names of the intrinsics.
const (
	colTrace    = "trace"
	colDuration = "duration"
	spanPrefix  = "span."
)

var intrinsicColumns = map[string]string{"span:name": "name", "span:status": "status",
	"span:statusMessage": "statusMessage", "span:kind": "kind", "span:duration": colDuration}

// maxSection bounds a section's decompressed size: a corrupt length must
// not allocate.
const maxSection = 64 << 20

// EncodeColumns encodes the spans of traces (parts of traces: the spans
// one block holds) as sections: "trace", "duration", then the others by
// name.
func EncodeColumns(traces []*Trace) (names []string, sections [][]byte, err error) {
	n := 0
	for _, t := range traces {
		n += len(t.Spans)
	}
	tr := binary.AppendUvarint(nil, uint64(n))
	tr = binary.AppendUvarint(tr, uint64(len(traces)))
	durs := binary.AppendUvarint(nil, uint64(n))
	dicts := map[string]*dictBuilder{}
	dict := func(name string) *dictBuilder {
		d := dicts[name]
		if d == nil {
			d = &dictBuilder{codes: make([]uint32, n), index: map[Value]uint32{}, byStr: map[string]uint32{}}
			dicts[name] = d
		}
		return d
	}
	name, status, message, kind := dict("name"), dict("status"), dict("statusMessage"), dict("kind")
	row := 0
	for _, t := range traces {
		raw, err := hex.DecodeString(t.ID)
		if err != nil || len(raw) != 16 {
			return nil, nil, fmt.Errorf("trace id %q: want 32 hex digits", t.ID)
		}
		tr = append(tr, raw...)
		for _, s := range t.Spans {
			name.set(row, Str(s.Name))
			status.set(row, Value{t: TypeStatus, s: s.Status})
			message.set(row, Str(s.StatusMessage))
			kind.set(row, Value{t: TypeKind, s: s.Kind})
			durs = binary.AppendVarint(durs, s.End-s.Start)
			for k, v := range s.Attrs {
				if v.Type() != TypeNil {
					dict(spanPrefix+k).set(row, v)
				}
			}
			row++
		}
	}
	for ti, t := range traces {
		for range t.Spans {
			tr = binary.AppendUvarint(tr, uint64(ti))
		}
	}
	add := func(name string, payload []byte) {
		names, sections = append(names, name), append(sections, pack(payload))
	}
	add(colTrace, tr)
	add(colDuration, durs)
	for _, name := range slices.Sorted(maps.Keys(dicts)) {
		add(name, dicts[name].encode(n))
	}
	return names, sections, nil
}

type dictBuilder struct {
	values []Value
	index  map[Value]uint32
	// byStr keys the values of one string-like type (strType: a string
	// attribute's, or the status's or kind's), most values: a string
	// hashes faster than a Value.
	byStr   map[string]uint32
	strType Type
	codes   []uint32
}

func (d *dictBuilder) set(row int, v Value) {
	str := v.t == TypeString || v.t == TypeStatus || v.t == TypeKind
	if str && d.strType == TypeAny { // the first string-like value
		d.strType = v.t
	}
	str = str && v.t == d.strType
	var c uint32
	var ok bool
	if str {
		c, ok = d.byStr[v.s]
	} else {
		c, ok = d.index[v]
	}
	if !ok {
		d.values = append(d.values, v)
		c = uint32(len(d.values))
		if str {
			d.byStr[v.s] = c
		} else {
			d.index[v] = c
		}
	}
	d.codes[row] = c
}

func (d *dictBuilder) encode(n int) []byte {
	b := binary.AppendUvarint(nil, uint64(n))
	b = binary.AppendUvarint(b, uint64(len(d.values)))
	for _, v := range d.values {
		b = appendValue(b, v)
	}
	for _, c := range d.codes {
		b = binary.AppendUvarint(b, uint64(c))
	}
	return b
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, byte(v.t))
	switch v.t {
	case TypeInt, TypeDuration:
		return binary.AppendVarint(b, v.i)
	case TypeFloat:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.f))
	case TypeBool:
		if v.b {
			return append(b, 1)
		}
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v.s)))
	return append(b, v.s...)
}

// pack compresses a section with S2 when that saves a quarter of it or
// more. A scan decompresses every section it reads: zstd made dictionaries
// of paths a third smaller than S2 does, but decoding a small zstd frame
// (its tables) cost 7 times as long, a third of a scan's CPU
// (docs/BENCHMARKS.md, "The scan rate").
func pack(payload []byte) []byte {
	if len(payload) >= 64 {
		z := s2.EncodeBetter(make([]byte, 1+s2.MaxEncodedLen(len(payload)))[1:], payload)
		if len(z) <= len(payload)*3/4 {
			return append([]byte{1}, z...)
		}
	}
	return append([]byte{0}, payload...)
}

var errColumns = errors.New("corrupt span columns")

// reader walks a section's payload.
type reader struct {
	all []byte // the payload
	b   []byte // what is left of it
	err error
}

func (r *reader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // most codes and counts: one byte
		v := r.b[0]
		r.b = r.b[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errColumns
	}
	r.b = nil
}

// count reads a count of items of at least least bytes each, refusing one
// the rest of the payload cannot hold (a corrupt count must not allocate).
func (r *reader) count(least int) int {
	c := r.uvarint()
	if c > uint64(len(r.b)/least) {
		r.fail()
		return 0
	}
	return int(c)
}

// entry passes one dictionary value (the type byte and what follows),
// checked but not decoded: most are only looked up.
func (r *reader) entry() {
	t := r.bytes(1)
	if t == nil {
		return
	}
	switch Type(t[0]) {
	case TypeInt, TypeDuration:
		r.varint()
	case TypeFloat:
		r.bytes(8)
	case TypeBool:
		if b := r.bytes(1); b != nil && b[0] > 1 {
			r.fail()
		}
	case TypeString, TypeStatus, TypeKind:
		r.bytes(r.uvarint())
	default:
		r.fail()
	}
}

// entryValue decodes an entry reader.entry checked.
func entryValue(e []byte) Value {
	typ, rest := Type(e[0]), e[1:]
	switch typ {
	case TypeInt, TypeDuration:
		i, _ := binary.Varint(rest)
		return Value{t: typ, i: i}
	case TypeFloat:
		return Float(math.Float64frombits(binary.LittleEndian.Uint64(rest)))
	case TypeBool:
		return Bool(rest[0] == 1)
	}
	_, n := binary.Uvarint(rest)
	return Value{t: typ, s: string(rest[n:])}
}

// scratch is memory a decoder reuses from block to block.
type scratch struct {
	buf   []byte // decompressed payloads
	codes []uint32
	ints  []int64
}

// unpack undoes pack (decompressing into sc's buffer) and checks the span
// count.
func unpack(section []byte, spans int, sc *scratch) (*reader, error) {
	if len(section) == 0 {
		return nil, errColumns
	}
	payload := section[1:]
	switch section[0] {
	case 0:
	case 1:
		n, err := s2.DecodedLen(payload)
		if err != nil || n > maxSection {
			return nil, errColumns
		}
		if payload, err = s2.Decode(slices.Grow(sc.buf[:0], n)[:n], payload); err != nil {
			return nil, fmt.Errorf("%w: %w", errColumns, err)
		}
		sc.buf = payload
	default:
		return nil, errColumns
	}
	r := &reader{all: payload, b: payload}
	if n := r.uvarint(); r.err != nil || n != uint64(spans) {
		return nil, errColumns
	}
	return r, nil
}

// column is one decoded section: each span's value is dictionary entry
// codes[i]-1 (none when the code is 0), or ints[i] as a duration.
// Entries are decoded when first asked for.
type column struct {
	codes []uint32
	raw   []byte   // the section's payload, which the entries are in
	ends  []uint32 // entry k is raw[ends[k-1]:ends[k]] (ends[-1]: start)
	start uint32
	vals  []Value
	done  []bool
	ints  []int64
}

// entries is the dictionary's size.
func (c *column) entries() int { return len(c.ends) }

// bytes is entry k's encoding.
func (c *column) bytes(k int) []byte {
	from := c.start
	if k > 0 {
		from = c.ends[k-1]
	}
	return c.raw[from:c.ends[k]]
}

func (c *column) value(i int) Value {
	if c.ints != nil {
		return duration(c.ints[i])
	}
	if code := c.codes[i]; code > 0 {
		return c.entry(int(code) - 1)
	}
	return Value{}
}

func (c *column) entry(k int) Value {
	if c.vals == nil {
		c.vals, c.done = make([]Value, len(c.ends)), make([]bool, len(c.ends))
	}
	if !c.done[k] {
		c.vals[k], c.done[k] = entryValue(c.bytes(k)), true
	}
	return c.vals[k]
}

// decodeColumn decodes a section into memory of sc, valid until sc's next
// use.
func decodeColumn(name string, section []byte, spans int, sc *scratch) (*column, error) {
	r, err := unpack(section, spans, sc)
	if err != nil {
		return nil, err
	}
	c := &column{}
	if name == colDuration {
		sc.ints = slices.Grow(sc.ints[:0], spans)[:spans]
		c.ints = sc.ints
		for i := range c.ints {
			c.ints[i] = r.varint()
		}
	} else {
		c.raw = r.all
		c.ends = make([]uint32, r.count(2))
		c.start = uint32(len(r.all) - len(r.b))
		for i := range c.ends {
			r.entry()
			c.ends[i] = uint32(len(r.all) - len(r.b))
		}
		sc.codes = slices.Grow(sc.codes[:0], spans)[:spans]
		c.codes = sc.codes
		for i := range c.codes {
			code := r.uvarint()
			if code > uint64(len(c.ends)) {
				r.fail()
				break
			}
			c.codes[i] = uint32(code)
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, fmt.Errorf("section %q: %w", name, errColumns)
	}
	return c, nil
}

// decodeTraces reads the trace section: the trace IDs and each span's.
func decodeTraces(section []byte, spans int) (ids [][16]byte, of []uint32, err error) {
	r, err := unpack(section, spans, &scratch{})
	if err != nil {
		return nil, nil, err
	}
	ids = make([][16]byte, r.count(16))
	for i := range ids {
		copy(ids[i][:], r.bytes(16))
	}
	of = make([]uint32, spans)
	for i := range of {
		t := r.uvarint()
		if t >= uint64(len(ids)) {
			r.fail()
			break
		}
		of[i] = uint32(t)
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, nil, fmt.Errorf("section %q: %w", colTrace, errColumns)
	}
	return ids, of, nil
}

// columnOf is the section a field reads, "" when it reads none (its value
// is not a function of the span alone).
func columnOf(f Field) string {
	switch f := f.(type) {
	case *Attribute:
		if f.Scope == "span" || f.Scope == "" {
			return spanPrefix + f.Name
		}
	case *Intrinsic:
		return intrinsicColumns[f.Name]
	}
	return ""
}
