package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/zipq/zipq/zipkin"
)

// What the stored binary encodings of the service metrics share (strip.go,
// statbatch.go): a reader of their fields that keeps the first error, and
// the exemplars as both store them — a byte of flags saying which of the
// slowest and the slowest failed span follow, each as trace ID high, low
// and span ID (8 bytes each, little endian), duration and start (zigzag
// varints, µs; the start after a base the encoding names).

// fieldReader reads a stored value's fields; its first error wraps bad
// and sticks, and every later read returns zero.
type fieldReader struct {
	b   []byte
	bad error
	err error
}

func (d *fieldReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{d.bad}, args...)...)
	}
}

func (d *fieldReader) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *fieldReader) byte() byte     { return d.take(1)[0] }
func (d *fieldReader) uint32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *fieldReader) uint64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }

func (d *fieldReader) uvarint() uint64 { return varint(d, binary.Uvarint) }
func (d *fieldReader) varint() int64   { return varint(d, binary.Varint) }

// varint reads one varint with read (binary.Uvarint or binary.Varint).
func varint[T uint64 | int64](d *fieldReader, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count is a uvarint that fits an int64.
func (d *fieldReader) count() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail("count %d", v)
	}
	return int64(v)
}

// items is a number of items of at least size bytes each, refused when
// the bytes left cannot hold them: nothing is allocated for a corrupt count.
func (d *fieldReader) items(size int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/size) {
		d.fail("%d items in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

// bytes is a uvarint length and that many bytes.
func (d *fieldReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("%d bytes of %d", n, len(d.b))
		return nil
	}
	return d.take(int(n))
}

// appendExemplars appends slow and failed (either may be nil), their
// starts after base.
func appendExemplars(b []byte, base int64, slow, failed *exemplar) []byte {
	var flags byte
	if slow != nil {
		flags |= 1
	}
	if failed != nil {
		flags |= 2
	}
	b = append(b, flags)
	for _, e := range []*exemplar{slow, failed} {
		if e == nil {
			continue
		}
		b = binary.LittleEndian.AppendUint64(b, e.trace.High)
		b = binary.LittleEndian.AppendUint64(b, e.trace.Low)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.span))
		b = binary.AppendVarint(b, e.us)
		b = binary.AppendVarint(b, e.at-base)
	}
	return b
}

// exemplars reads what appendExemplars wrote, calling put with 0 for the
// slowest span and 1 for the slowest failed one, for each there is.
func (d *fieldReader) exemplars(base int64, put func(int, exemplar)) {
	flags := d.byte()
	if flags&^3 != 0 {
		d.fail("flags %#x", flags)
		return
	}
	for i := range 2 {
		if flags&(1<<i) == 0 {
			continue
		}
		x := exemplar{trace: zipkin.TraceID{High: d.uint64(), Low: d.uint64()}, span: zipkin.SpanID(d.uint64())}
		x.us = d.varint()
		x.at = base + d.varint()
		if d.err == nil {
			put(i, x)
		}
	}
}
